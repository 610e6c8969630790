// One combined market-data connection per market: the depth diffs (book kept in sync by the
// documented procedure, resynced after a gap, a checksum mismatch or a dropped connection),
// trades, one kline interval and the 24 h ticker. Reconnects with exponential backoff and
// jitter; its state (live / resyncing / offline) is shown on the page.
import { getJson } from "./api";
import { applyDiff, type DepthDiff, type Level, LocalBook } from "./book";

export type FeedState = "live" | "resyncing" | "offline";

type Snapshot = { lastUpdateId: number; bids: Level[]; asks: Level[] };

export interface TradeMsg {
  t: number;
  p: string;
  q: string;
  T: number;
  m: boolean;
}

export interface KlineMsg {
  k: { t: number; o: string; h: string; l: string; c: string; v: string; i: string };
}

export interface TickerMsg {
  c: string;
  p: string;
  P: string;
  h: string;
  l: string;
  v: string;
  q: string;
}

export interface FeedHandlers {
  state(s: FeedState, detail: string): void;
  book(b: LocalBook): void;
  trade(t: TradeMsg): void;
  kline(k: KlineMsg): void;
  ticker(t: TickerMsg): void;
}

const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 10_000;

export class MarketFeed {
  readonly book = new LocalBook();
  private ws: WebSocket | null = null;
  private buffer: DepthDiff[] = [];
  private synced = false;
  private syncing = false;
  private attempts = 0;
  private closed = false;
  private nextId = 1;
  private timer: number | undefined;
  /** The first snapshot, asked for together with the stream's handshake instead of after it
   * (page load: the handshake and the snapshot were two round trips in a row on the path to
   * the first book). Taken before the subscription starts, it may miss a change made between
   * the two: the first diff then does not follow it (U > lastUpdateId + 1 while buffered, or
   * U != previous u + 1 once live) and the usual resync fetches a fresh one, so it is never
   * trusted beyond what the procedure checks. Used once. */
  private prefetched: Promise<Snapshot> | null;
  resyncs = 0;

  constructor(
    readonly symbol: string,
    private interval: string,
    private readonly on: FeedHandlers,
  ) {
    this.connect();
    this.prefetched = this.snapshot();
    this.prefetched.catch(() => undefined); // a failure is met again (and shown) by resync
  }

  private snapshot(): Promise<Snapshot> {
    return getJson<Snapshot>("/api/v3/depth", { symbol: this.symbol, limit: "5000" });
  }

  private streams(): string[] {
    const s = this.symbol.toLowerCase();
    return [`${s}@depth@100ms`, `${s}@trade`, `${s}@kline_${this.interval}`, `${s}@ticker`];
  }

  private connect(): void {
    if (this.closed) return;
    const proto = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${proto}://${location.host}/stream?streams=${this.streams().join("/")}`);
    this.ws = ws;
    this.synced = false;
    this.buffer = [];
    this.on.state("resyncing", "connecting");
    ws.onopen = () => {
      this.attempts = 0;
      void this.resync("connected");
    };
    ws.onmessage = (ev) => this.message(String(ev.data));
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.synced = false;
      if (this.closed) return;
      const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempts);
      this.attempts += 1;
      const wait = Math.round(delay / 2 + (Math.random() * delay) / 2);
      this.on.state("offline", `reconnecting in ${(wait / 1000).toFixed(1)} s`);
      this.timer = window.setTimeout(() => this.connect(), wait);
    };
  }

  setInterval(interval: string): void {
    const old = `${this.symbol.toLowerCase()}@kline_${this.interval}`;
    this.interval = interval;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      const now = `${this.symbol.toLowerCase()}@kline_${interval}`;
      ws.send(JSON.stringify({ method: "UNSUBSCRIBE", params: [old], id: this.nextId++ }));
      ws.send(JSON.stringify({ method: "SUBSCRIBE", params: [now], id: this.nextId++ }));
    }
  }

  close(): void {
    this.closed = true;
    window.clearTimeout(this.timer);
    this.ws?.close();
    this.ws = null;
  }

  private message(text: string): void {
    const msg = JSON.parse(text) as { stream?: string; data?: Record<string, unknown> };
    if (!msg.stream || !msg.data) return; // SUBSCRIBE replies
    const kind = msg.stream.slice(msg.stream.indexOf("@") + 1);
    if (kind.startsWith("depth")) this.depth(msg.data as unknown as DepthDiff);
    else if (kind === "trade") this.on.trade(msg.data as unknown as TradeMsg);
    else if (kind.startsWith("kline_")) this.on.kline(msg.data as unknown as KlineMsg);
    else if (kind === "ticker") this.on.ticker(msg.data as unknown as TickerMsg);
  }

  private depth(diff: DepthDiff): void {
    if (!this.synced) {
      this.buffer.push(diff);
      return;
    }
    const r = applyDiff(this.book, diff, false);
    if (r === "resync") void this.resync(`gap or checksum mismatch at ${diff.U}..${diff.u}`);
    else if (r === "applied") this.on.book(this.book);
  }

  /** Steps 2-4: a snapshot, then the buffered diffs after it; again until they fit. */
  private async resync(why: string): Promise<void> {
    if (this.syncing) return;
    this.syncing = true;
    this.synced = false;
    this.resyncs += 1;
    this.on.state("resyncing", why);
    try {
      for (let tries = 0; tries < 5 && !this.closed; tries++) {
        const early = this.prefetched;
        this.prefetched = null;
        const snap = (early ? await early.catch(() => null) : null) ?? (await this.snapshot());
        this.book.load(snap);
        const pending = this.buffer.filter((d) => d.u > snap.lastUpdateId);
        let ok = true;
        let first = true;
        for (const d of pending) {
          if (applyDiff(this.book, d, first) === "resync") {
            ok = false;
            break;
          }
          first = false;
        }
        if (ok) {
          this.buffer = [];
          this.synced = true;
          this.on.book(this.book);
          this.on.state("live", `in sync at update ${this.book.lastUpdateId}`);
          return;
        }
      }
      this.ws?.close(); // could not fit the diffs to a snapshot: start over
    } catch (exc) {
      this.on.state("offline", `snapshot failed: ${String(exc)}`);
      this.ws?.close();
    } finally {
      this.syncing = false;
    }
  }
}
