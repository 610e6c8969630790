// The operations console's compliance and custody panels: open AML cases (assign, comment,
// close) and custody's open alerts (deep reorgs that halt a chain). Both through the operator
// API only; the server checks every role, so a panel the role may not see answers 403 and the
// console hides it (console.ts).
import { drawList, EditableList, fetchList } from "./consolelist";
import { $, el, say } from "./dom";
import type { AmlCase, CustodyAlert, StaffSession } from "./operators";

/** Open AML cases. Compliance assigns one to a staff member (empty: oneself), adds notes, and
 * closes it with an outcome and a note; the operator API keeps every note with the staff id. */
export class AmlPanel extends EditableList {
  private myId = "";

  async load(op: StaffSession): Promise<void> {
    if (this.busy) return; // someone is typing in a row: do not redraw under them
    const list = await fetchList("c-aml", () => op.amlCases());
    if (list === null || this.busy) return;
    drawList("c-aml", list, (c) => this.row(op, c), "no open cases", (tr, c) => {
      tr.dataset.caseId = c.case_id;
    });
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
    this.holdWhileEditing(who, comment, outcome, note);
    const act = (call: () => Promise<string>) => this.act(msg, call, () => this.load(op));
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
  const list = await fetchList("c-alerts", () => op.custodyAlerts());
  if (list === null) return;
  say($("c-alerts-msg"), "");
  drawList(
    "c-alerts",
    list,
    (a: CustodyAlert) => [
      String(a.alert_id),
      a.chain,
      el("span", { class: "sell" }, `${a.kind}: chain halted`),
      el("span", { class: "mono" }, a.detail),
    ],
    "no open alerts: every chain is running",
  );
}
