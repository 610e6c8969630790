// The operations console: health, markets (halt / cancel-only / post-only / resume), accounts
// and key metrics over time, through /health, /metrics and the operator's /admin endpoints.
import "./style.css";
import { createChart, type IChartApi, type ISeriesApi, LineSeries, type UTCTimestamp } from "lightweight-charts";
import { ApiError, admin } from "./api";
import { $, el, input, rows, say } from "./dom";
import { parseMetrics, quantileSince, type Samples, total } from "./metrics";

const POLL_MS = 2_000;
const TOKEN = "kootabase.admin";
const MTOKEN = "kootabase.metrics";
const STATES = [
  ["OPEN", "Resume"],
  ["HALTED", "Halt"],
  ["CANCEL_ONLY", "Cancel-only"],
  ["POST_ONLY", "Post-only"],
] as const;

interface Health {
  live: boolean;
  ready: boolean;
  reason: string | null;
  lastSeq: number;
  stateHash: string | null;
  stateHashSeq: number;
  checks: Record<string, Record<string, unknown> & { ok?: boolean }>;
}

interface MarketRow {
  symbol: string;
  state: string;
}

interface AccountRow {
  account_id: number;
  demo: boolean;
  open_orders: number;
  balances: Record<string, { free: string; locked: string }>;
}

/** One metric over time: a line chart and its latest value in text. */
class Line {
  private readonly chart: IChartApi;
  private readonly series: ISeriesApi<"Line">;
  private readonly out: HTMLElement;
  constructor(
    private readonly name: string,
    private readonly digits = 0,
  ) {
    this.chart = createChart($(`m-${name}`), {
      layout: { background: { color: "#10151c" }, textColor: "#c9d1d9", attributionLogo: false },
      grid: { vertLines: { color: "#1c2430" }, horzLines: { color: "#1c2430" } },
      timeScale: { timeVisible: true, secondsVisible: true },
      autoSize: true,
    });
    this.series = this.chart.addSeries(LineSeries, { color: "#58a6ff", lineWidth: 2 });
    this.out = document.querySelector(`[data-metric="${name}"]`) as HTMLElement;
  }
  add(t: number, v: number | undefined): void {
    if (v === undefined || !Number.isFinite(v)) {
      this.out.textContent = this.name === "ledger" ? "(no ledger follower)" : "-";
      return;
    }
    this.series.update({ time: t as UTCTimestamp, value: v });
    this.out.textContent = v.toFixed(this.digits);
  }
}

class Console {
  private token = sessionStorage.getItem(TOKEN) ?? "";
  private mtoken = sessionStorage.getItem(MTOKEN) ?? "";
  private prev: Samples | null = null;
  private prevAt = 0;
  private lastT = 0;
  private readonly charts = {
    orders: new Line("orders", 1),
    ack: new Line("ack", 2),
    fsync: new Line("fsync", 2),
    seq: new Line("seq"),
    history: new Line("history"),
    ledger: new Line("ledger"),
  };

  start(): void {
    $("c-login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.token = input("c-token").value.trim();
      this.mtoken = input("c-mtoken").value.trim();
      input("c-token").value = "";
      void this.open();
    });
    $("c-logout").addEventListener("click", () => {
      sessionStorage.removeItem(TOKEN);
      sessionStorage.removeItem(MTOKEN);
      this.token = "";
      this.show(false);
    });
    if (this.token) void this.open();
    void this.poll();
    window.setInterval(() => void this.poll(), POLL_MS);
  }

  private show(on: boolean): void {
    $("c-login-box").hidden = on;
    $("c-markets-box").hidden = !on;
    $("c-accounts-box").hidden = !on;
    $("c-logout").hidden = !on;
  }

  private async open(): Promise<void> {
    try {
      await this.markets();
      sessionStorage.setItem(TOKEN, this.token);
      sessionStorage.setItem(MTOKEN, this.mtoken);
      this.show(true);
      say($("c-login-msg"), "");
      await this.accounts();
    } catch (exc) {
      this.token = "";
      sessionStorage.removeItem(TOKEN);
      this.show(false);
      say($("c-login-msg"), exc instanceof ApiError ? exc.toString() : String(exc), "error");
    }
  }

  private async poll(): Promise<void> {
    await Promise.all([this.health(), this.metrics()]);
    if (this.token) {
      await Promise.all([this.markets(), this.accounts()]).catch(() => undefined);
    }
  }

  private async health(): Promise<void> {
    const badge = $("c-ready");
    try {
      const resp = await fetch("/health");
      const h = (await resp.json()) as Health;
      badge.dataset.state = h.ready ? "live" : "offline";
      badge.textContent = h.ready ? "ready" : `not ready: ${h.reason ?? "?"}`;
      $("c-seq").textContent = `seq ${h.lastSeq}`;
      const kv: [string, string][] = [
        ["Process", h.live ? "live" : "down"],
        ["Journal: last sequence", String(h.lastSeq)],
        ["State hash", h.stateHash ? `${h.stateHash} at seq ${h.stateHashSeq}` : "not computed yet"],
      ];
      $("c-health").replaceChildren(
        ...kv.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { class: "mono" }, v)]),
      );
      rows(
        $("c-checks"),
        Object.entries(h.checks ?? {}).map(([name, c]) => {
          const { ok, ...rest } = c;
          return [
            name,
            el("span", { class: ok === false ? "sell" : "buy" }, ok === false ? "no" : "yes"),
            el("span", { class: "mono" }, JSON.stringify(rest)),
          ];
        }),
        "no supervised parts (ledger follower, custody watchers) in this process",
      );
      if (!performance.getEntriesByName("kootabase:health-drawn").length) {
        performance.mark("kootabase:health-drawn"); // bench/web_pages.py reads it
      }
    } catch (exc) {
      badge.dataset.state = "offline";
      badge.textContent = "unreachable";
      badge.title = String(exc);
    }
  }

  private async metrics(): Promise<void> {
    const headers: Record<string, string> = {};
    if (this.mtoken) headers.Authorization = `Bearer ${this.mtoken}`;
    const msg = $("c-metrics-msg");
    try {
      const resp = await fetch("/metrics", { headers });
      if (!resp.ok) {
        say(msg, `/metrics answered ${resp.status}`, "error");
        return;
      }
      const now = parseMetrics(await resp.text());
      const at = Date.now();
      let t = Math.floor(at / 1000);
      if (t <= this.lastT) t = this.lastT + 1;
      if (this.prev) {
        this.lastT = t;
        const dt = (at - this.prevAt) / 1000;
        const orders = (total(now, "kootabase_orders_total") ?? 0) - (total(this.prev, "kootabase_orders_total") ?? 0);
        this.charts.orders.add(t, orders / dt);
        const ms = (s: number | undefined) => (s === undefined ? 0 : s * 1000);
        this.charts.ack.add(t, ms(quantileSince(this.prev, now, "kootabase_ack_latency_seconds", 0.99)));
        this.charts.fsync.add(t, ms(quantileSince(this.prev, now, "kootabase_journal_fsync_seconds", 0.99)));
        const seq = total(now, "kootabase_last_seq");
        this.charts.seq.add(t, seq);
        const indexed = total(now, "kootabase_history_indexed_seq");
        this.charts.history.add(t, seq !== undefined && indexed !== undefined ? seq - indexed : undefined);
        this.charts.ledger.add(t, total(now, "kootabase_ledger_projection_lag_commands"));
      }
      this.prev = now;
      this.prevAt = at;
      say(msg, "");
    } catch (exc) {
      say(msg, `metrics: ${String(exc)}`, "error");
    }
  }

  private async markets(): Promise<void> {
    const list = await admin<MarketRow[]>(this.token, "GET", "markets");
    const tbody = $("c-markets");
    tbody.replaceChildren(
      ...list.map((m) => {
        const actions = STATES.map(([state, label]) => {
          const b = el("button", { type: "button", class: "small", "data-state": state }, label);
          b.disabled = m.state === state;
          b.addEventListener("click", () => void this.setState(m.symbol, state));
          return b;
        });
        return el(
          "tr",
          { "data-symbol": m.symbol },
          el("td", {}, m.symbol),
          el("td", { class: "m-state" }, m.state),
          el("td", {}, ...actions),
        );
      }),
    );
  }

  private async setState(symbol: string, state: string): Promise<void> {
    const msg = $("c-markets-msg");
    try {
      const r = await admin<{ symbol: string; state: string; seq: number }>(
        this.token,
        "POST",
        "markets/state",
        { symbol, state },
      );
      say(msg, `${r.symbol} is now ${r.state} (journal seq ${r.seq})`, "ok");
    } catch (exc) {
      say(msg, exc instanceof ApiError ? exc.toString() : String(exc), "error");
    }
    await this.markets();
  }

  private async accounts(): Promise<void> {
    const list = await admin<AccountRow[]>(this.token, "GET", "accounts");
    rows(
      $("c-accounts"),
      list.map((a) => [
        String(a.account_id),
        a.demo ? "demo" : "",
        String(a.open_orders),
        Object.entries(a.balances)
          .map(([asset, b]) => `${asset} ${b.free} / ${b.locked}`)
          .join(", "),
      ]),
      "no accounts",
    );
  }
}

new Console().start();
