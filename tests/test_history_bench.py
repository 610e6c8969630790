"""`kootabase bench history` runs end to end on a small history and reports sane numbers (the
bench itself checks that every generated order is stored and found by id and client id)."""

from __future__ import annotations

from bench.history_bench import run


def test_history_bench_small_run() -> None:
    r = run(6_000, 3)
    assert r["orders"] == 6_000 and r["trade_rows"] == 2 * r["trades"] > 0
    assert r["status_queries"] > 0 and r["client_id_queries"] > 0
    assert 50 < r["bytes_per_order"] < 2_000
    assert r["all_orders_mean_rows"] > 0 and r["my_trades_mean_rows"] > 0
    assert r["gateway_rss_mb"] > 0 and r["build_orders_per_s"] > 0


def test_history_writer_bench_small_run() -> None:
    """`bench/history_writer_bench.py` feeds the real writer and reads its thread's CPU: every
    order handed over is committed (the run flushes), and the CPU it reports is the writer's."""
    from bench.history_writer_bench import one_run

    r = one_run(held=2_000, orders=1_200, rate=1e9, accounts=8, commit_interval_s=0)
    assert r["commits"] >= 1
    assert 0 < r["writer_us_per_row"] < r["writer_us_per_order"]
