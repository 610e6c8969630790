// The operations console's compliance and custody panels: open AML cases (assign, comment,
// close) and custody's open alerts (deep reorgs that halt a chain). Both through the operator
// API only; the server checks every role, so a panel the role may not see answers 403 and the
// console hides it (console.ts).
import { ApiError } from "./api";
import { $, el, rows, say } from "./dom";
import type { AmlCase, CustodyAlert, StaffSession } from "./operators";

/** A panel this console hides rather than shows an error in: not this role's (403), or a part
 * this server does not run (404 CUSTODY_DISABLED / AML_DISABLED). */
export function hides(exc: unknown): boolean {
  return (
    exc instanceof ApiError &&
    (exc.status === 403 || (exc.status === 404 && String(exc.code).endsWith("_DISABLED")))
  );
}

function text(exc: unknown): string {
  return exc instanceof ApiError ? exc.toString() : String(exc);
}

/** Open AML cases. Compliance assigns one to a staff member (empty: oneself), adds notes, and
 * closes it with an outcome and a note; the operator API keeps every note with the staff id. */
export class AmlPanel {
  private busy = false; // someone is typing in a row: do not redraw under them
  private myId = "";

  async load(op: StaffSession): Promise<void> {
    if (this.busy) return;
    const msg = $("c-aml-msg");
    let list: AmlCase[];
    try {
      list = await op.amlCases();
    } catch (exc) {
      if (hides(exc)) throw exc;
      $("c-aml").replaceChildren();
      say(msg, text(exc));
      return;
    }
    if (this.busy) return;
    rows($("c-aml"), list.map((c) => this.row(op, c)), "no open cases");
    for (const [i, tr] of [...$("c-aml").querySelectorAll("tr")].entries()) {
      if (list[i]) tr.dataset.caseId = list[i].case_id;
    }
  }

  private row(op: StaffSession, c: AmlCase): (Node | string)[] {
    const msg = $("c-aml-msg");
    const label = (what: string) => `${what} of case ${c.case_id}`;
    const who = el("input", { "aria-label": label("Assignee"), placeholder: "staff id (empty: me)", class: "c-assignee" });
    const assign = el("button", { type: "button", class: "small" }, "Assign");
    const comment = el("input", { "aria-label": label("Comment"), placeholder: "comment", class: "c-comment" });
    const add = el("button", { type: "button", class: "small" }, "Comment");
    const outcome = el("select", { "aria-label": label("Outcome") });
    outcome.replaceChildren(
      ...["cleared", "reported", "account_closed"].map((o) => el("option", { value: o }, o)),
    );
    const note = el("input", { "aria-label": label("Closing note"), placeholder: "closing note", class: "c-note" });
    const close = el("button", { type: "button", class: "small" }, "Close case");
    for (const e of [who, comment, outcome, note]) e.addEventListener("focus", () => (this.busy = true));
    const act = async (call: () => Promise<string>) => {
      try {
        say(msg, await call(), "ok");
      } catch (exc) {
        say(msg, text(exc), "error");
      }
      this.busy = false;
      await this.load(op);
    };
    assign.addEventListener("click", () =>
      void act(async () => {
        let staffId = who.value.trim();
        if (!staffId) {
          this.myId ||= (await op.me()).staff_id;
          staffId = this.myId;
        }
        const r = await op.assignCase(c.case_id, staffId);
        return `Case ${r.case_id} assigned to ${r.assignee}`;
      }),
    );
    add.addEventListener("click", () =>
      void act(async () => {
        const r = await op.commentCase(c.case_id, comment.value);
        return `Case ${r.case_id}: comment added (${r.notes.length} note(s))`;
      }),
    );
    close.addEventListener("click", () =>
      void act(async () => {
        await op.closeCase(c.case_id, outcome.value, note.value);
        return `Case ${c.case_id} closed: ${outcome.value}`;
      }),
    );
    return [
      el("span", { class: "mono" }, c.case_id),
      `${c.rule_id} (${c.kind})`,
      String(c.account_id),
      c.withdrawal_id ? String(c.withdrawal_id) : "",
      c.detail,
      el("span", { class: "c-case-assignee" }, c.assignee || "-"),
      el("span", {}, who, " ", assign),
      el("span", {}, comment, " ", add),
      el("span", {}, outcome, " ", note, " ", close),
    ];
  }
}

/** Custody's open alerts: a deep reorg halts that chain's deposits and withdrawals until an
 * operator investigates and runs `kootabase custody alerts resolve` (not a button: it rolls
 * blocks back). Read-only here, so whoever watches the console sees why a chain stopped. */
export async function loadAlerts(op: StaffSession): Promise<void> {
  let list: CustodyAlert[];
  try {
    list = await op.custodyAlerts();
  } catch (exc) {
    if (hides(exc)) throw exc;
    $("c-alerts").replaceChildren();
    say($("c-alerts-msg"), text(exc));
    return;
  }
  say($("c-alerts-msg"), "");
  rows(
    $("c-alerts"),
    list.map((a) => [
      String(a.alert_id),
      a.chain,
      el("span", { class: "sell" }, `${a.kind}: chain halted`),
      el("span", { class: "mono" }, a.detail),
    ]),
    "no open alerts: every chain is running",
  );
}
