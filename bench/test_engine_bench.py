"""pytest-benchmark suite for the matching engine: the same workloads as ``bench engine``.

Run with ``.venv/bin/python -m pytest bench/ --benchmark-only`` (``tests/`` is the default
test path, so the normal test run never includes these). Compare runs with pytest-benchmark's
``--benchmark-autosave`` / ``--benchmark-compare``. Each round starts from a fresh engine in
the prefilled state (built in ``setup``, untimed) and times the whole stream; sizes are smaller
than the CLI's so the suite stays quick.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest

from bench.compiled_api import CompiledHandle, reference_engine_class
from bench.engine_bench import BATCH
from bench.workloads import Workload, workload_a, workload_b

HAS_COMPILED = importlib.util.find_spec("engine.core.compiled") is not None
pytestmark = pytest.mark.skipif(not HAS_COMPILED, reason="engine.core.compiled not present")

SIZES = {"a": 200_000, "b": 50_000}
REFERENCE_PREFIX = 20_000
ROUNDS = 5


@pytest.fixture(scope="module", params=["a", "b"])
def prepared(request: pytest.FixtureRequest) -> tuple[Workload, CompiledHandle, np.ndarray]:
    name: str = request.param
    workload = (workload_a if name == "a" else workload_b)(0, SIZES[name])
    handle = CompiledHandle(workload)
    rows = handle.encode(workload.stream)
    handle.warm_up(rows)
    return workload, handle, rows


def _record(benchmark: Any, workload: Workload, commands: int) -> None:
    benchmark.extra_info.update(
        workload=workload.name,
        commands=commands,
        resting=workload.resting_after_prefill,
        digest=workload.digest(),
    )
    median = benchmark.stats.stats.median if benchmark.stats else None
    if median:
        benchmark.extra_info["commands_per_sec"] = commands / median


def test_compiled_stream(
    benchmark: Any, prepared: tuple[Workload, CompiledHandle, np.ndarray]
) -> None:
    workload, handle, rows = prepared
    batches = [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        return (handle.fresh(),), {}

    def run(engine: Any) -> int:
        return sum(engine.process_encoded(batch) for batch in batches)

    events = benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    assert events > len(rows)
    _record(benchmark, workload, len(rows))


def test_compiled_stream_via_objects(
    benchmark: Any, prepared: tuple[Workload, CompiledHandle, np.ndarray]
) -> None:
    """``process`` with command and event objects: the cost of the Python boundary."""
    workload, handle, _rows = prepared
    prefix = workload.stream[: REFERENCE_PREFIX * 5]
    batches = [prefix[i : i + BATCH] for i in range(0, len(prefix), BATCH)]

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        return (handle.fresh(),), {}

    def run(engine: Any) -> int:
        return sum(len(engine.process(batch)) for batch in batches)

    benchmark.pedantic(run, setup=setup, rounds=ROUNDS, iterations=1)
    _record(benchmark, workload, len(prefix))


def test_reference_stream(
    benchmark: Any, prepared: tuple[Workload, CompiledHandle, np.ndarray]
) -> None:
    workload, _handle, _rows = prepared
    prefix = workload.stream[:REFERENCE_PREFIX]
    batches = [prefix[i : i + BATCH] for i in range(0, len(prefix), BATCH)]
    cls = reference_engine_class()

    def setup() -> tuple[tuple[Any], dict[str, Any]]:
        engine = cls(workload.config)
        engine.process(workload.setup)
        engine.process(workload.prefill)
        return (engine,), {}

    def run(engine: Any) -> int:
        return sum(len(engine.process(batch)) for batch in batches)

    benchmark.pedantic(run, setup=setup, rounds=3, iterations=1)
    _record(benchmark, workload, len(prefix))
