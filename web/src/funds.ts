// Deposit and withdrawal: the account's deposit address with its QR code, the withdrawal
// form and history (with custody's stage: awaiting approval, held, broadcast...). Custody may
// not be configured: the server's -4008 is shown as it comes.
import qrcode from "qrcode-generator";
import { describe as message, type KeyCreds, signed } from "./api";
import { isDecimal, isZero } from "./decimal";
import { $, el, input, rows, say, select } from "./dom";
import type { Market } from "./market";

export class Funds {
  constructor(
    private readonly creds: () => KeyCreds | null,
    private readonly all: () => Market[],
  ) {}

  coins(held: string[]): void {
    const picker = select("f-coin");
    const names = new Set(held);
    for (const m of this.all()) {
      names.add(m.baseAsset);
      names.add(m.quoteAsset);
    }
    const list = [...names].sort();
    if (picker.options.length === list.length) return;
    const was = picker.value;
    picker.replaceChildren(...list.map((c) => el("option", { value: c }, c)));
    if (was) picker.value = was;
  }

  wire(): void {
    select("f-coin").addEventListener("change", () => void this.show());
    $("withdraw").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.withdraw();
    });
  }

  /** Deposit address (with its QR code) and withdrawal history; custody may not be set up. */
  async show(): Promise<void> {
    const s = this.creds();
    if (!s) return;
    const coin = select("f-coin").value;
    const address = $("f-address");
    const canvas = $("f-qr") as HTMLCanvasElement;
    try {
      const a = await signed<{ address: string; network: string }>(
        s,
        "GET",
        "/sapi/v1/capital/deposit/address",
        { coin },
      );
      address.textContent = `${a.address} (${a.network})`;
      drawQr(canvas, a.address);
      const hist = await signed<
        {
          applyTime: string;
          coin: string;
          amount: string;
          transactionFee: string;
          status: number;
          info?: string;
          custodyStatus?: string;
        }[]
      >(s, "GET", "/sapi/v1/capital/withdraw/history", { coin });
      rows(
        $("w-history"),
        hist.map((w) => [
          w.applyTime,
          w.coin,
          w.amount,
          w.transactionFee,
          withdrawStatus(w.status, w.custodyStatus, w.info),
        ]),
        "no withdrawals",
      );
    } catch (exc) {
      address.textContent = message(exc);
      canvas.width = 0;
      canvas.height = 0;
    }
  }

  private async withdraw(): Promise<void> {
    const s = this.creds();
    if (!s) return;
    const msg = $("w-msg");
    const amount = input("w-amount").value.trim();
    if (!isDecimal(amount) || isZero(amount)) {
      say(msg, "Amount: enter a decimal number above zero", "error");
      return;
    }
    try {
      const r = await signed<{ id: string }>(s, "POST", "/sapi/v1/capital/withdraw/apply", {
        coin: select("f-coin").value,
        address: input("w-address").value.trim(),
        amount,
      });
      say(msg, `Withdrawal ${r.id} requested`, "ok");
    } catch (exc) {
      say(msg, message(exc), "error");
    }
    await this.show();
  }
}

/** The dialect's withdrawal status codes. */
const WITHDRAW_STATUS: Record<number, string> = {
  1: "cancelled",
  2: "awaiting approval",
  3: "rejected",
  4: "processing",
  5: "failed",
  6: "completed",
};

/** The dialect's status, custody's stage when it says more (held, broadcast, mined...), and
 * why, when custody gave a reason. */
function withdrawStatus(status: number, stage?: string, info?: string): string {
  const name = WITHDRAW_STATUS[status] ?? `status ${status}`;
  const detail = stage?.replace(/_/g, " ");
  let s = detail && detail !== name ? `${name} (${detail})` : name;
  if (info && info !== stage) s += `: ${info}`;
  return s;
}

/** The address as a QR code, drawn module by module on a canvas (no markup, no data URL). */
function drawQr(canvas: HTMLCanvasElement, text: string): void {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const cell = 4;
  const quiet = 4;
  canvas.width = canvas.height = (n + 2 * quiet) * cell;
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#000";
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < n; c++) {
      if (qr.isDark(r, c)) ctx.fillRect((c + quiet) * cell, (r + quiet) * cell, cell, cell);
    }
  }
}
