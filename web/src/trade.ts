// The trading page: market data for everyone, the account panels after logging in.
import "./style.css";
import { getJson } from "./api";
import type { Level, LocalBook } from "./book";
import type { Candle, CandleChart, DepthChart } from "./charts";
import { sub, trim } from "./decimal";
import { $, el, rows, say, select, time } from "./dom";
import { type FeedState, MarketFeed, type TradeMsg } from "./feed";
import { type Market, markets } from "./market";
import { Account } from "./account";

const BOOK_ROWS = 15;
const TRADE_ROWS = 40;
const DEPTH_LEVELS = 100;

type KlineRow = [number, string, string, string, string, string];

class TradePage {
  private feed: MarketFeed | null = null;
  private market!: Market;
  private symbol = "";
  private drawn = false;
  private interval = "1m";
  private candles: CandleChart | null = null;
  private depth: DepthChart | null = null;
  private lastBook: LocalBook | null = null;
  private bookStop = ""; // price of the level that is the book's tab stop ("" = best bid)
  /** The charts library is most of the page's script: loaded beside the stream's handshake
   * and the book snapshot instead of before them (it was parsed and run first, on the path to
   * the first book). The first book counts as drawn once its rows and its depth chart are. */
  private readonly chartsLoaded = import("./charts").then(({ CandleChart, DepthChart }) => {
    this.candles = new CandleChart($("candle-chart"));
    this.depth = new DepthChart($("depth-chart"));
    if (this.lastBook) this.scheduleBook(this.lastBook);
  });
  private trades: TradeMsg[] = [];
  private frame = 0;
  private all: Market[] = [];
  readonly account = new Account(() => this.market, () => this.all);

  async start(): Promise<void> {
    // The URL's market starts streaming at once, while exchangeInfo loads (page load time).
    const wanted = new URLSearchParams(location.search).get("symbol");
    if (wanted && /^[A-Z0-9]{2,20}$/.test(wanted)) this.stream(wanted);
    this.all = await markets();
    const picker = select("market");
    picker.replaceChildren(...this.all.map((m) => el("option", { value: m.symbol }, m.symbol)));
    const first = this.all.find((m) => m.symbol === wanted) ?? this.all[0];
    picker.value = first.symbol;
    picker.addEventListener("change", () => this.open(picker.value));
    // A level clicked (or Enter on it) puts its price in the ticket.
    for (const id of ["asks", "bids"]) {
      const pick = (ev: Event) => {
        const row = (ev.target as HTMLElement).closest("tr");
        if (row?.dataset.price) this.account.usePrice(row.dataset.price);
      };
      $(id).addEventListener("click", pick);
      $(id).addEventListener("keydown", (ev) => {
        if (ev.key === "Enter") pick(ev);
        else this.bookKeys(ev);
      });
      $(id).addEventListener("focusin", (ev) => {
        this.bookStop = (ev.target as HTMLElement).dataset.price ?? this.bookStop;
      });
    }
    for (const b of $("intervals").querySelectorAll<HTMLButtonElement>("button")) {
      b.addEventListener("click", () => this.setInterval(b.dataset.iv ?? "1m"));
    }
    this.open(first.symbol);
    await this.account.start();
  }

  private open(symbol: string): void {
    this.market = this.all.find((m) => m.symbol === symbol) as Market;
    history.replaceState(null, "", `?symbol=${symbol}`);
    if (this.feed?.symbol !== symbol) this.stream(symbol);
    this.account.marketChanged();
  }

  /** The market's stream and its REST starting points (trades, candles, ticker). */
  private stream(symbol: string): void {
    this.symbol = symbol;
    this.feed?.close();
    this.trades = [];
    this.feed = new MarketFeed(symbol, this.interval, {
      state: (s, d) => this.state(s, d),
      book: (b) => this.scheduleBook(b),
      trade: (t) => this.trade(t),
      kline: (k) => this.kline({ t: k.k.t, o: k.k.o, h: k.k.h, l: k.k.l, c: k.k.c, v: k.k.v }),
      ticker: (t) => this.ticker(t),
    });
    void this.loadTrades();
    void this.loadCandles();
    void this.loadTicker();
  }

  private setInterval(iv: string): void {
    this.interval = iv;
    for (const b of $("intervals").querySelectorAll<HTMLButtonElement>("button")) {
      b.setAttribute("aria-pressed", String(b.dataset.iv === iv));
    }
    this.feed?.setInterval(iv);
    void this.loadCandles();
  }

  private state(s: FeedState, detail: string): void {
    const badge = $("feed-state");
    badge.dataset.state = s;
    badge.textContent = s;
    badge.title = detail;
    badge.dataset.resyncs = String(this.feed?.resyncs ?? 0);
  }

  private scheduleBook(b: LocalBook): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.renderBook(b);
    });
  }

  private renderBook(b: LocalBook): void {
    // Keyboard: the book is one tab stop (the level last focused, else the best bid) and the
    // arrow keys move between levels (`bookKeys`); the rows are rebuilt on every update, so a
    // focused level is focused again in the new rows (the same price, else the same place).
    const focused = document.activeElement as HTMLElement | null;
    const was = focused?.closest("#asks, #bids") ? focused : null;
    const wasIndex = was ? this.bookRows().indexOf(was) : -1;
    const line = (side: string) => ([p, q]: Level) =>
      el("tr", { class: side, "data-price": p, tabindex: "-1" }, el("td", {}, p), el("td", {}, q));
    const asks = b.asks.top(BOOK_ROWS);
    const bids = b.bids.top(BOOK_ROWS);
    $("asks").replaceChildren(...asks.slice().reverse().map(line("ask")));
    $("bids").replaceChildren(...bids.map(line("bid")));
    const all = this.bookRows();
    const stop =
      all.find((r) => r.dataset.price === (was?.dataset.price ?? this.bookStop)) ??
      (wasIndex >= 0 ? all[Math.min(wasIndex, all.length - 1)] : undefined) ??
      ($("bids").querySelector("tr[data-price]") as HTMLElement | null) ??
      all[all.length - 1];
    if (stop) {
      stop.tabIndex = 0;
      if (was) stop.focus({ preventScroll: true });
    }
    const spread = asks.length && bids.length ? sub(asks[0][0], bids[0][0]) : "-";
    $("spread").textContent = `spread ${spread}`;
    $("spread").dataset.lastUpdateId = String(b.lastUpdateId);
    this.lastBook = b;
    if (!this.depth) return; // drawn when the charts arrive
    this.depth.set(b.bids.top(DEPTH_LEVELS), b.asks.top(DEPTH_LEVELS));
    if (!this.drawn) {
      this.drawn = true;
      performance.mark("kootabase:book-drawn"); // bench/web_pages.py reads it
    }
  }

  /** Every level row, asks (highest first) then bids: the order the arrow keys follow. */
  private bookRows(): HTMLElement[] {
    return [...document.querySelectorAll<HTMLElement>("#asks tr[data-price], #bids tr[data-price]")];
  }

  /** Up/Down (and Home/End) move the book's focus between levels; the focused level becomes
   * the book's one tab stop. */
  private bookKeys(ev: KeyboardEvent): void {
    const all = this.bookRows();
    const at = all.indexOf(ev.target as HTMLElement);
    if (at < 0) return;
    const to = { ArrowUp: at - 1, ArrowDown: at + 1, Home: 0, End: all.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    const next = all[Math.max(0, Math.min(all.length - 1, to))];
    for (const r of all) r.tabIndex = r === next ? 0 : -1;
    this.bookStop = next.dataset.price ?? "";
    next.focus();
  }

  private async loadTrades(): Promise<void> {
    const symbol = this.symbol;
    const rowsIn = await getJson<{ id: number; price: string; qty: string; time: number; isBuyerMaker: boolean }[]>(
      "/api/v3/trades",
      { symbol, limit: String(TRADE_ROWS) },
    );
    if (symbol !== this.symbol) return;
    const known = new Set(this.trades.map((t) => t.t));
    const older = rowsIn
      .filter((r) => !known.has(r.id))
      .map((r) => ({ t: r.id, p: r.price, q: r.qty, T: r.time, m: r.isBuyerMaker }));
    this.trades = [...this.trades, ...older.reverse()].slice(0, TRADE_ROWS);
    this.renderTrades();
  }

  private trade(t: TradeMsg): void {
    this.trades.unshift(t);
    this.trades.length = Math.min(this.trades.length, TRADE_ROWS);
    this.renderTrades();
    this.account.marketActivity();
  }

  private renderTrades(): void {
    rows(
      $("trades"),
      this.trades.map((t) => [
        el("span", { class: t.m ? "sell" : "buy" }, t.p),
        t.q,
        time(t.T).slice(11),
      ]),
      "no trades yet",
    );
  }

  private async loadCandles(): Promise<void> {
    const symbol = this.symbol;
    const iv = this.interval;
    const data = await getJson<KlineRow[]>("/api/v3/klines", { symbol, interval: iv, limit: "500" });
    if (symbol !== this.symbol || iv !== this.interval) return;
    const candles = data.map((k) => ({ t: k[0], o: k[1], h: k[2], l: k[3], c: k[4], v: k[5] }));
    await this.chartsLoaded;
    if (symbol !== this.symbol || iv !== this.interval) return;
    this.candles?.set(candles);
    if (candles.length) this.showCandle(candles[candles.length - 1]);
  }

  private kline(k: Candle): void {
    this.candles?.update(k); // before the charts load: dropped, the next update redraws it
    this.showCandle(k);
  }

  private showCandle(k: Candle): void {
    $("last-candle").textContent =
      `${this.interval} ${time(k.t)} O ${k.o} H ${k.h} L ${k.l} C ${k.c} V ${k.v}`;
  }

  private async loadTicker(): Promise<void> {
    const symbol = this.symbol;
    const t = await getJson<{
      lastPrice: string;
      priceChange: string;
      priceChangePercent: string;
      highPrice: string;
      lowPrice: string;
      volume: string;
    }>("/api/v3/ticker/24hr", { symbol });
    if (symbol !== this.symbol) return;
    this.ticker({
      c: t.lastPrice,
      p: t.priceChange,
      P: t.priceChangePercent,
      h: t.highPrice,
      l: t.lowPrice,
      v: t.volume,
    });
  }

  private ticker(t: { c: string; p: string; P: string; h: string; l: string; v: string }): void {
    $("t-last").textContent = t.c;
    const change = $("t-change");
    change.textContent = `${t.p} (${t.P}%)`;
    change.className = t.p.startsWith("-") ? "sell" : "buy";
    $("t-high").textContent = t.h;
    $("t-low").textContent = t.l;
    $("t-vol").textContent = `${trim(t.v)} ${this.market?.baseAsset ?? ""}`;
  }
}

const page = new TradePage();
page.start().catch((exc) => say($("login-msg"), `Could not load markets: ${String(exc)}`, "error"));
