// The operations console's custody reconciliation panel: per asset, what the ledger owes
// (users + fees) against what the exchange's addresses hold on chain, the known differences
// (hot-wallet float, unconfirmed deposits, fees, withdrawals in flight) and what is left
// unexplained, which must be zero. From GET /ops/v1/custody/reconciliation (finance, admin,
// auditor); other roles get 403 and console.ts hides the panel. Amounts are the server's exact
// decimal strings, shown as they come.
import { backoffice, describe } from "./api";
import { hides } from "./consolelist";
import { $, el, rows, say } from "./dom";
import type { StaffSession } from "./operators";

export interface ReconRow {
  asset: string;
  chain: string;
  status: "balanced" | "unexplained" | "chain_unavailable";
  error: string;
  ledger_owes: string;
  users: string;
  fees: string;
  on_chain: string | null;
  hot_float: string;
  difference: string | null;
  explanations: { label: string; amount: string }[];
  unexplained: string | null;
}

/** Reading every exchange address on chain costs the nodes more than the console's 2 s poll
 * should: the panel refreshes every 30 s, or at once with its button. */
const EVERY_MS = 30_000;

export class ReconPanel {
  private lastAt = 0;
  private op: StaffSession | null = null;

  async load(op: StaffSession, force = false): Promise<void> {
    if (this.op === null) {
      $("c-recon-refresh").addEventListener("click", () => {
        if (this.op) void this.load(this.op, true).catch(() => undefined);
      });
    }
    if (op !== this.op) this.lastAt = 0; // a new session: load now
    this.op = op;
    if (!force && Date.now() - this.lastAt < EVERY_MS) return;
    this.lastAt = Date.now();
    const msg = $("c-recon-msg");
    let answer: { seq: number; assets: ReconRow[] };
    try {
      answer = await backoffice("GET", "/ops/v1/custody/reconciliation", undefined, op.bearer);
    } catch (exc) {
      this.lastAt = 0; // 403/404: console.ts hides the panel; anything else: try again next poll
      if (hides(exc)) throw exc;
      $("c-recon").replaceChildren();
      say(msg, describe(exc), "error");
      return;
    }
    const bad = answer.assets.filter((r) => r.status !== "balanced").length;
    say(
      msg,
      `at seq ${answer.seq}: ${bad ? `${bad} asset(s) need attention` : "every asset balanced"}`,
      bad ? "error" : "ok",
    );
    rows(
      $("c-recon"),
      answer.assets.map((r) => [
        `${r.asset} (${r.chain})`,
        el("span", { class: `mono ${r.status === "balanced" ? "buy" : "sell"}`, title: r.error }, r.status),
        el("span", { class: "mono", title: `users ${r.users} + fees ${r.fees}` }, r.ledger_owes),
        el("span", { class: "mono" }, r.on_chain ?? "?"),
        el("span", { class: "mono" }, r.hot_float),
        el(
          "span",
          { class: "mono" },
          r.explanations.map((e) => `${e.label}: ${e.amount}`).join("; ") || "-",
        ),
        el("span", { class: "mono c-recon-unexplained" }, r.unexplained ?? "?"),
      ]),
      "no custodied assets",
    );
  }
}
