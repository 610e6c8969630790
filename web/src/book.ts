// The local order book, kept by the documented diff procedure (docs/marketdata.md, "Book
// sync"): levels keyed by their exact price string, sorted by the price as an integer of the
// market's quote decimals (every price string of one market has the same number of decimals).
import { crc32 } from "./crc32";

export type Level = [price: string, qty: string];

function key(price: string): bigint {
  return BigInt(price.replace(".", ""));
}

function stripped(s: string): string {
  return s.replace(".", "").replace(/^0+/, "");
}

/** One side: a price -> quantity map plus its keys sorted best first. */
class Side {
  private readonly levels = new Map<bigint, Level>();
  private sorted: bigint[] = [];
  constructor(private readonly descending: boolean) {}

  private before(a: bigint, b: bigint): boolean {
    return this.descending ? a > b : a < b;
  }

  private index(k: bigint): number {
    let lo = 0;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.before(this.sorted[mid], k)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  set(price: string, qty: string): void {
    const k = key(price);
    const zero = !/[1-9]/.test(qty);
    const had = this.levels.has(k);
    if (zero) {
      if (had) {
        this.levels.delete(k);
        this.sorted.splice(this.index(k), 1);
      }
      return;
    }
    this.levels.set(k, [price, qty]);
    if (!had) this.sorted.splice(this.index(k), 0, k);
  }

  clear(): void {
    this.levels.clear();
    this.sorted = [];
  }

  top(n: number): Level[] {
    const out: Level[] = [];
    for (let i = 0; i < n && i < this.sorted.length; i++) {
      out.push(this.levels.get(this.sorted[i]) as Level);
    }
    return out;
  }

  get size(): number {
    return this.sorted.length;
  }
}

export class LocalBook {
  readonly bids = new Side(true);
  readonly asks = new Side(false);
  lastUpdateId = 0;

  load(snapshot: { lastUpdateId: number; bids: Level[]; asks: Level[] }): void {
    this.bids.clear();
    this.asks.clear();
    for (const [p, q] of snapshot.bids) this.bids.set(p, q);
    for (const [p, q] of snapshot.asks) this.asks.set(p, q);
    this.lastUpdateId = snapshot.lastUpdateId;
  }

  apply(bids: Level[], asks: Level[]): void {
    for (const [p, q] of bids) this.bids.set(p, q);
    for (const [p, q] of asks) this.asks.set(p, q);
  }

  /** CRC32 of the top 10 asks then the top 10 bids, each as price then quantity with the dot
   * removed and leading zeros stripped (the server's `cs`). */
  checksum(): number {
    let text = "";
    for (const [p, q] of this.asks.top(10)) text += stripped(p) + stripped(q);
    for (const [p, q] of this.bids.top(10)) text += stripped(p) + stripped(q);
    return crc32(text);
  }
}

export interface DepthDiff {
  U: number;
  u: number;
  pu?: number;
  b: Level[];
  a: Level[];
  cs?: number;
}

export type SyncResult = "applied" | "stale" | "resync";

/** Steps 3-7 of the procedure for one diff against a book loaded from a snapshot. */
export function applyDiff(book: LocalBook, diff: DepthDiff, first: boolean): SyncResult {
  if (diff.u <= book.lastUpdateId) return "stale";
  const next = book.lastUpdateId + 1;
  if (first ? !(diff.U <= next && next <= diff.u) : diff.U !== next) return "resync";
  if (!first && diff.pu !== undefined && diff.pu !== book.lastUpdateId) return "resync";
  book.apply(diff.b, diff.a);
  book.lastUpdateId = diff.u;
  if (diff.cs !== undefined && book.checksum() !== diff.cs) return "resync";
  return "applied";
}
