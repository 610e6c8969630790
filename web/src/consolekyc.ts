// The operations console's KYC review queue: submissions waiting for a decision, oldest first,
// with the documents' metadata (kind, country, SHA-256 and size: the files themselves stay with
// the upload store). Compliance approves a tier (the journaled SetAccountTier names the staff
// member) or rejects with a reason the user reads; support sees the queue, and the server
// refuses its decisions (403), which the panel shows as they come.
import { drawList, EditableList, fetchList, forbidden } from "./consolelist";
import { $, el, time } from "./dom";
import type { KycSubmission, StaffSession } from "./operators";

function size(bytes: number): string {
  return bytes >= 1_048_576 ? `${(bytes / 1_048_576).toFixed(1)} MiB` : `${Math.ceil(bytes / 1024)} KiB`;
}

export class KycPanel extends EditableList {
  /** Throws what the console hides on (403: not this role's). */
  async load(op: StaffSession): Promise<void> {
    if (this.busy) return; // someone is typing a reason or picking a tier: do not redraw under them
    const list = await fetchList("c-kyc", () => op.kycQueue(), forbidden);
    if (list === null || this.busy) return;
    drawList("c-kyc", list, (s) => this.row(op, s), "no KYC submission is waiting", (tr, s) => {
      tr.dataset.submissionId = s.submission_id;
    });
  }

  private row(op: StaffSession, s: KycSubmission): (Node | string)[] {
    const msg = $("c-kyc-msg");
    const who = s.email || `account ${s.account_id}`;
    const tier = el("select", { "aria-label": `Tier to grant ${who}` });
    tier.replaceChildren(...[1, 2, 3].map((t) => el("option", { value: String(t) }, `tier ${t}`)));
    tier.value = String(s.requested_tier);
    const approve = el("button", { type: "button", class: "small" }, "Approve");
    const reason = el("input", { "aria-label": `Reason to reject ${who}`, placeholder: "reason", class: "c-kyc-reason" });
    const reject = el("button", { type: "button", class: "small" }, "Reject");
    this.holdWhileEditing(tier, reason);
    const act = (call: () => Promise<string>) => this.act(msg, call, () => this.load(op));
    approve.addEventListener("click", () =>
      void act(async () => {
        const r = await op.approveKyc(s.submission_id, Number(tier.value));
        return `${who}: tier ${r.tier} granted (seq ${r.seq})`;
      }),
    );
    reject.addEventListener("click", () =>
      void act(async () => {
        await op.rejectKyc(s.submission_id, reason.value);
        return `${who}: submission rejected`;
      }),
    );
    const docs = el(
      "span",
      { class: "mono" },
      s.documents.map((d) => `${d.type} ${d.country} ${size(d.size_bytes)} ${d.sha256.slice(0, 12)}…`).join("; "),
    );
    return [
      who,
      String(s.account_id),
      `tier ${s.requested_tier}`,
      docs,
      time(s.submitted_ms),
      el("span", {}, tier, " ", approve),
      el("span", {}, reason, " ", reject),
    ];
  }
}
