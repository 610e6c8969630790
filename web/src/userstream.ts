// The account's own events, live: a WS API session (`session.logon` signed with the key's
// HMAC secret, then `userDataStream.subscribe`). Each executionReport or balance update asks
// the page to refresh its account panels; reconnects with backoff like the market feed.
import { hmacHex, type KeyCreds, serverNow } from "./api";

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15_000;

export class UserStream {
  private ws: WebSocket | null = null;
  private closed = false;
  private attempts = 0;
  private timer: number | undefined;

  constructor(
    private readonly creds: KeyCreds,
    private readonly onEvent: () => void,
    private readonly onState: (live: boolean, detail: string) => void,
  ) {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/ws-api/v3`);
    this.ws = ws;
    ws.onopen = () => void this.logon(ws);
    ws.onmessage = (ev) => this.message(ws, String(ev.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.closed) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
      this.attempts += 1;
      this.onState(false, `account stream reconnecting in ${(delay / 1000).toFixed(1)} s`);
      this.timer = window.setTimeout(() => this.connect(), delay);
    };
  }

  /** The WS API's signature: every parameter but `signature`, sorted by name, `k=v&...`. */
  private async logon(ws: WebSocket): Promise<void> {
    const params: Record<string, string | number> = {
      apiKey: this.creds.apiKey,
      timestamp: serverNow(),
    };
    const payload = Object.keys(params)
      .sort()
      .map((k) => `${k}=${params[k]}`)
      .join("&");
    params.signature = await hmacHex(this.creds.secret, payload);
    ws.send(JSON.stringify({ id: "logon", method: "session.logon", params }));
  }

  private message(ws: WebSocket, text: string): void {
    const msg = JSON.parse(text) as {
      id?: string;
      status?: number;
      error?: { code: number; msg: string };
      event?: unknown;
    };
    if (msg.event !== undefined) {
      this.onEvent();
      return;
    }
    if (msg.status !== 200) {
      this.onState(false, `account stream: ${msg.error?.msg ?? "refused"} (${msg.error?.code})`);
      return;
    }
    if (msg.id === "logon") {
      ws.send(JSON.stringify({ id: "subscribe", method: "userDataStream.subscribe" }));
    } else if (msg.id === "subscribe") {
      this.attempts = 0;
      this.onState(true, "account events live");
      this.onEvent(); // anything missed while reconnecting
    }
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }
}
