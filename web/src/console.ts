// The operations console: health, markets (halt / cancel-only / post-only / resume), accounts
// and key metrics over time, through /health, /metrics and the operator's /admin endpoints;
// with a staff session also withdrawals (four eyes), the audit log, AML cases and custody
// alerts (the last two in consolecases.ts) and the KYC review queue (consolekyc.ts).
import "./style.css";
import { createChart, type IChartApi, type ISeriesApi, LineSeries, type UTCTimestamp } from "lightweight-charts";
import { backoffice, describe } from "./api";
import { AmlPanel, loadAlerts } from "./consolecases";
import { loadOverview } from "./consolecluster";
import { act, drawList, fetchList, forbidden, hides } from "./consolelist";
import { KycPanel } from "./consolekyc";
import { ReconPanel } from "./consolerecon";
import { $, el, input, rows, say } from "./dom";
import { parseMetrics, quantileSince, type Samples, total } from "./metrics";
import {
  type AccountRow,
  AdminToken,
  type AuditEntry,
  type Operator,
  StaffSession,
  type Withdrawal,
} from "./operators";

const POLL_MS = 2_000;
const TOKEN = "kootabase.admin";
const STAFF = "kootabase.staff";
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
  private op: Operator | null = null;
  private auditNext = 1;
  private auditLog: AuditEntry[] = [];
  private auditBusy = false;
  private auditFilter: Record<string, string> = {};
  private denied = new Set<string>();
  private editingTier = false;
  private readonly amlPanel = new AmlPanel();
  private readonly kycPanel = new KycPanel();
  private readonly reconPanel = new ReconPanel();
  private mtoken = sessionStorage.getItem(MTOKEN) ?? "";
  private prev: Samples | null = null;
  private prevAt = 0;
  private lastT = 0;
  private readonly charts = {
    orders: new Line("orders", 1),
    ack: new Line("ack", 2),
    fsync: new Line("fsync", 2),
    mdlag: new Line("mdlag", 1),
    seq: new Line("seq"),
    history: new Line("history"),
    ledger: new Line("ledger"),
  };

  start(): void {
    const tabs: [string, string][] = [
      ["c-tab-staff", "c-staff-login"],
      ["c-tab-token", "c-login"],
    ];
    for (const [tab, form] of tabs) {
      $(tab).addEventListener("click", () => {
        for (const [t, f] of tabs) {
          $(t).setAttribute("aria-selected", String(t === tab));
          $(f).hidden = f !== form;
        }
      });
    }
    $("c-staff-login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.staffLogin();
    });
    $("c-login").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = input("c-token").value.trim();
      input("c-token").value = "";
      void this.open(new AdminToken(token), () => sessionStorage.setItem(TOKEN, token));
    });
    $("c-logout").addEventListener("click", () => void this.logout());
    $("c-audit-search").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const filter: Record<string, string> = {};
      const staff = input("c-audit-staff").value.trim();
      const account = input("c-audit-account").value.trim();
      if (staff) filter.staff_id = staff;
      if (account) filter.account_id = account;
      this.auditFilter = filter; // searched by the server, from the journal's start
      this.auditNext = 1;
      this.auditLog = [];
      void this.audit().catch((exc) => say($("c-audit-msg"), String(exc), "error"));
    });
    const staff = sessionStorage.getItem(STAFF);
    const token = sessionStorage.getItem(TOKEN);
    if (staff) void this.open(new StaffSession(staff), () => undefined);
    else if (token) void this.open(new AdminToken(token), () => undefined);
    void this.poll();
    window.setInterval(() => void this.poll(), POLL_MS);
  }

  private async staffLogin(): Promise<void> {
    try {
      const r = await backoffice<{ access_token: string; staff: { email: string; role: string } }>(
        "POST",
        "/ops/v1/auth/login",
        { email: input("c-email").value, password: input("c-password").value, totp: input("c-totp").value },
      );
      input("c-password").value = "";
      input("c-totp").value = "";
      $("c-who").textContent = `${r.staff.email} (${r.staff.role})`;
      await this.open(new StaffSession(r.access_token), () =>
        sessionStorage.setItem(STAFF, r.access_token),
      );
    } catch (exc) {
      say($("c-login-msg"), describe(exc), "error");
    }
  }

  private async logout(): Promise<void> {
    const op = this.op;
    this.op = null;
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(STAFF);
    sessionStorage.removeItem(MTOKEN);
    this.auditNext = 1;
    this.auditLog = [];
    this.denied.clear();
    $("c-who").textContent = "";
    this.show(false);
    if (op instanceof StaffSession) await op.logout().catch(() => undefined);
  }

  private show(on: boolean): void {
    const staff = on && this.op?.staff === true;
    $("c-login-box").hidden = on;
    $("c-markets-box").hidden = !on;
    $("c-accounts-box").hidden = !on;
    $("c-withdrawals-box").hidden = !staff || this.denied.has("c-withdrawals");
    $("c-audit-box").hidden = !staff || this.denied.has("c-audit");
    $("c-aml-box").hidden = !staff || this.denied.has("c-aml");
    $("c-alerts-box").hidden = !staff || this.denied.has("c-alerts");
    $("c-kyc-box").hidden = !staff || this.denied.has("c-kyc");
    $("c-recon-box").hidden = !staff || this.denied.has("c-recon");
    $("c-overview-box").hidden = !on || this.denied.has("c-overview"); // admin token too
    $("c-logout").hidden = !on;
  }

  private async open(op: Operator, remember: () => void): Promise<void> {
    this.mtoken = input("c-mtoken").value.trim() || this.mtoken;
    try {
      this.op = op;
      await this.markets();
      remember();
      sessionStorage.setItem(MTOKEN, this.mtoken);
      this.show(true);
      say($("c-login-msg"), "");
      void this.staffPanels();
    } catch (exc) {
      this.op = null;
      sessionStorage.removeItem(TOKEN);
      sessionStorage.removeItem(STAFF);
      this.show(false);
      say($("c-login-msg"), describe(exc), "error");
    }
  }

  private async poll(): Promise<void> {
    await Promise.all([this.health(), this.metrics()]);
    if (this.op) await this.staffPanels().catch(() => undefined);
  }

  /** Each panel on its own: a role may see some and not others (the server decides). */
  private async staffPanels(): Promise<void> {
    const panels: [string, () => Promise<void>][] = [
      ["c-overview", async () => (this.op ? loadOverview(this.op) : undefined)],
      ["c-markets", () => this.markets()],
      ["c-accounts", () => this.accounts()],
      ["c-withdrawals", () => this.withdrawals()],
      ["c-audit", () => this.audit()],
      ["c-aml", async () => (this.op instanceof StaffSession ? this.amlPanel.load(this.op) : undefined)],
      ["c-alerts", async () => (this.op instanceof StaffSession ? loadAlerts(this.op) : undefined)],
      ["c-kyc", async () => (this.op instanceof StaffSession ? this.kycPanel.load(this.op) : undefined)],
      ["c-recon", async () => (this.op instanceof StaffSession ? this.reconPanel.load(this.op) : undefined)],
    ];
    await Promise.all(
      panels
        .filter(([id]) => !this.denied.has(id))
        .map(([id, load]) =>
          load().catch((exc) => {
            if (hides(exc)) {
              this.denied.add(id); // not this role's, or not run here: hide it, ask no more
              $(`${id}-box`).hidden = true;
              return;
            }
            say($(`${id}-msg`), describe(exc));
          }),
        ),
    );
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
        "no supervised parts (ledger follower, cluster replica) in this process",
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
        this.charts.mdlag.add(t, ms(quantileSince(this.prev, now, "kootabase_marketdata_lag_seconds", 0.99)));
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
    if (!this.op) return;
    const list = await this.op.markets();
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
    if (!this.op) return;
    try {
      const r = await this.op.setState(symbol, state);
      say(msg, `${r.symbol} is now ${r.state} (journal seq ${r.seq})`, "ok");
    } catch (exc) {
      say(msg, describe(exc), "error");
    }
    await this.markets();
  }

  private async accounts(): Promise<void> {
    const op = this.op;
    if (!op || this.editingTier) return;
    const list = await op.accounts();
    const staff = op instanceof StaffSession ? op : null;
    rows(
      $("c-accounts"),
      list.map((a) => [
        String(a.account_id),
        a.email ?? (a.demo ? "demo" : ""),
        String(a.open_orders),
        a.balances
          ? Object.entries(a.balances)
              .map(([asset, b]) => `${asset} ${b.free} / ${b.locked}`)
              .join(", ")
          : `tier ${a.tier ?? "-"}${a.frozen ? ", FROZEN" : ""}`,
        staff ? this.standing(staff, a) : "",
      ]),
      "no accounts",
    );
    for (const [i, tr] of [...$("c-accounts").querySelectorAll("tr")].entries()) {
      if (list[i]) tr.dataset.accountId = String(list[i].account_id);
    }
  }

  /** Freeze / unfreeze and the KYC tier (journaled with the staff id; roles checked by the
   * operator API). */
  private standing(op: StaffSession, a: AccountRow): HTMLElement {
    const msg = $("c-accounts-msg");
    const act = async (what: string, call: () => Promise<{ seq: number }>) => {
      try {
        const r = await call();
        say(msg, `Account ${a.account_id}: ${what} (journal seq ${r.seq})`, "ok");
      } catch (exc) {
        say(msg, describe(exc), "error");
      }
      this.editingTier = false;
      await this.accounts();
    };
    const freeze = el("button", { type: "button", class: "small" }, a.frozen ? "Unfreeze" : "Freeze");
    freeze.addEventListener("click", () =>
      void act(a.frozen ? "unfrozen" : "frozen", () => op.setFrozen(a.account_id, !a.frozen)),
    );
    const tier = el("select", { "aria-label": `Tier of account ${a.account_id}` });
    tier.replaceChildren(...[0, 1, 2, 3].map((t) => el("option", { value: String(t) }, `tier ${t}`)));
    tier.value = String(a.tier ?? 0);
    tier.addEventListener("focus", () => (this.editingTier = true));
    const set = el("button", { type: "button", class: "small" }, "Set tier");
    set.addEventListener("click", () =>
      void act(`tier ${tier.value}`, () => op.setTier(a.account_id, Number(tier.value))),
    );
    return el("span", {}, freeze, " ", tier, " ", set);
  }

  /** Four eyes: two different staff approve, one rejects with a reason (the operator API
   * enforces both, and the roles). */
  private async withdrawals(): Promise<void> {
    const op = this.op;
    if (!(op instanceof StaffSession)) return;
    const msg = $("c-withdrawals-msg");
    const list = await fetchList("c-withdrawals", () => op.withdrawals(), forbidden);
    if (list === null) return;
    const decide = async (w: Withdrawal, approve: boolean) => {
      const reason = approve ? "" : (window.prompt(`Why reject withdrawal ${w.withdrawal_id}?`) ?? "");
      if (!approve && !reason) return;
      await act(
        msg,
        async () => {
          const r = await op.decide(w.withdrawal_id, approve, reason);
          return `Withdrawal ${r.withdrawal_id}: ${r.decisions.length} decision(s)`;
        },
        () => this.withdrawals(),
      );
    };
    drawList(
      "c-withdrawals",
      list,
      (w) => {
        const ok = el("button", { type: "button", class: "small" }, "Approve");
        ok.addEventListener("click", () => void decide(w, true));
        const no = el("button", { type: "button", class: "small" }, "Reject");
        no.addEventListener("click", () => void decide(w, false));
        return [
          String(w.withdrawal_id),
          String(w.account_id),
          `${w.amount} ${w.asset}`,
          el("span", { class: "mono" }, w.address),
          w.review.join(", "),
          w.decisions.map((d) => `${d.decision} by ${d.staff_id}`).join("; ") || "none yet",
          el("span", {}, ok, " ", no),
        ];
      },
      "none waiting",
      (tr, w) => {
        tr.dataset.withdrawalId = String(w.withdrawal_id);
      },
    );
  }

  /** Read on from where the last poll stopped (the server reads a bounded stretch of the
   * journal per request and says where to continue). */
  private async audit(): Promise<void> {
    const op = this.op;
    if (!(op instanceof StaffSession)) return;
    if (this.auditBusy) return; // one reader at a time: the log is appended in order
    this.auditBusy = true;
    try {
      const { entries, next_seq } = await op.audit(this.auditNext, this.auditFilter);
      this.auditNext = next_seq;
      this.auditLog = [...this.auditLog, ...entries].slice(-50);
    } finally {
      this.auditBusy = false;
    }
    rows(
      $("c-audit"),
      this.auditLog
        .slice()
        .reverse()
        .map((e) => [
          String(e.seq),
          new Date(e.time_ms).toISOString().replace("T", " ").slice(0, 19),
          e.staff_id || "(admin token)",
          e.action,
          auditTarget(e),
        ]),
      "no staff actions yet",
    );
  }
}

/** What an audit entry acted on, in a few words. */
function auditTarget(e: AuditEntry): string {
  if (e.symbol) return `${e.symbol} ${e.state ?? ""}`;
  if (e.withdrawal_id !== undefined) {
    return `withdrawal ${e.withdrawal_id} of account ${e.account_id}${e.note ? `: ${e.note}` : ""}`;
  }
  return `account ${e.account_id ?? ""}${e.tier !== undefined ? ` tier ${e.tier}` : ""}`;
}

new Console().start();
