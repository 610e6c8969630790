// The logged-in half of the trading page: order ticket, balances, open orders (cancel, amend),
// order and trade history, deposit address and withdrawals. Everything through signed REST;
// every amount is the server's decimal string or one the user typed, checked as a decimal.
import { describe as message, signed } from "./api";
import { Funds } from "./funds";
import { isDecimal, isZero, mul, trim } from "./decimal";
import { $, el, input, rows, say, select, time } from "./dom";
import type { Market } from "./market";
import * as session from "./session";
import { UserStream } from "./userstream";

/** A safety net: the account stream triggers a refresh on every event of the account. */
const REFRESH_MS = 10_000;

interface Order {
  orderId: number;
  symbol: string;
  side: string;
  type: string;
  price: string;
  stopPrice?: string;
  origQty: string;
  executedQty: string;
  status: string;
  time: number;
  timeInForce: string;
}

interface Fill {
  id: number;
  isBuyer: boolean;
  isMaker: boolean;
  price: string;
  qty: string;
  quoteQty: string;
  commission: string;
  commissionAsset: string;
  time: number;
}


function clientId(): string {
  const r = new Uint8Array(8);
  crypto.getRandomValues(r);
  return `web-${Array.from(r, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

export class Account {
  private s: session.Session | null = session.load();
  private side: "BUY" | "SELL" = "BUY";
  private timer: number | undefined;
  private keepAliveTimer: number | undefined;
  private pending: number | undefined;
  private refreshing = false;
  private again = false;
  private editing = false;
  private stream: UserStream | null = null;
  private readonly funds: Funds;

  constructor(
    private readonly market: () => Market,
    all: () => Market[],
  ) {
    this.funds = new Funds(() => this.s, all);
  }

  async start(): Promise<void> {
    this.wireLogin();
    this.wireTicket();
    this.wireTabs();
    this.funds.wire();
    $("logout").addEventListener("click", () => void this.logout());
    if (this.s) {
      await session.resume().catch(() => undefined);
      this.loggedIn();
    }
  }

  marketChanged(): void {
    this.ticketFields();
    if (this.s) void this.refresh();
  }

  /** A price picked from the book: into the ticket, ready to type a quantity. */
  usePrice(price: string): void {
    if (!this.s) return;
    input("o-price").value = price;
    this.ticketFields();
    input("o-qty").focus();
  }

  /** A trade printed on the market: balances and orders may have changed. */
  marketActivity(): void {
    this.soon();
  }

  /** Refresh shortly (events come in bursts: one refresh for the burst). */
  private soon(): void {
    if (!this.s || this.pending) return;
    this.pending = window.setTimeout(() => {
      this.pending = undefined;
      void this.refresh();
    }, 150);
  }

  // ---- login ----------------------------------------------------------------------------

  private wireLogin(): void {
    const tabs: [string, string][] = [
      ["tab-user", "login-user"],
      ["tab-key", "login-key"],
    ];
    for (const [tab, form] of tabs) {
      $(tab).addEventListener("click", () => {
        for (const [t, f] of tabs) {
          $(t).setAttribute("aria-selected", String(t === tab));
          $(f).hidden = f !== form;
        }
      });
    }
    const msg = $("login-msg");
    $("login-user").addEventListener("submit", (ev) => {
      ev.preventDefault();
      say(msg, "Logging in...");
      session
        .loginUser(input("email").value, input("password").value, input("totp").value)
        .then((s) => this.loggedIn(s))
        .catch((exc) => say(msg, message(exc), "error"));
    });
    $("do-signup").addEventListener("click", () => {
      say(msg, "Signing up...");
      session
        .signup(input("email").value, input("password").value)
        .then(() => session.loginUser(input("email").value, input("password").value, ""))
        .then((s) => this.loggedIn(s))
        .catch((exc) => say(msg, message(exc), "error"));
    });
    $("login-key").addEventListener("submit", (ev) => {
      ev.preventDefault();
      session
        .loginKey(input("api-key").value.trim(), input("api-secret").value.trim())
        .then((s) => this.loggedIn(s))
        .catch((exc) => say(msg, message(exc), "error"));
    });
  }

  private loggedIn(s?: session.Session): void {
    if (s) this.s = s;
    if (!this.s) return;
    // Keyboard: the login form is about to hide; focus would fall to the page's start.
    const fromLogin = $("login").contains(document.activeElement);
    input("password").value = "";
    input("api-secret").value = "";
    say($("login-msg"), "");
    $("login").hidden = true;
    $("ticket").hidden = false;
    $("balances-box").hidden = false;
    $("account-tabs").hidden = false;
    $("logout").hidden = false;
    $("who").textContent = this.s.label;
    this.ticketFields();
    if (fromLogin) input("o-price").focus();
    void this.refresh();
    this.stream?.close();
    const who = $("who");
    this.stream = new UserStream(
      this.s,
      () => this.soon(),
      (live, detail) => {
        who.dataset.stream = live ? "live" : "offline";
        who.title = detail;
      },
    );
    window.clearInterval(this.timer);
    this.timer = window.setInterval(() => void this.refresh(), REFRESH_MS);
    window.clearInterval(this.keepAliveTimer);
    if (this.s.refresh) {
      const beat = async () => {
        const s = this.s;
        if (s && !(await session.keepAlive(s)) && this.s === s) {
          await this.logout();
          say($("login-msg"), "Your session ended (logged out elsewhere or idle): log in again.", "error");
        }
      };
      if (!s) void beat(); // resumed after a reload: find out now whether the session lives
      this.keepAliveTimer = window.setInterval(() => void beat(), session.KEEPALIVE_MS);
    }
  }

  private async logout(): Promise<void> {
    const s = this.s;
    this.s = null;
    this.stream?.close();
    this.stream = null;
    window.clearInterval(this.timer);
    window.clearInterval(this.keepAliveTimer);
    $("login").hidden = false;
    $("ticket").hidden = true;
    $("balances-box").hidden = true;
    $("account-tabs").hidden = true;
    $("logout").hidden = true;
    $("who").textContent = "";
    input($("login-user").hidden ? "api-key" : "email").focus(); // the button just hid itself
    if (s) await session.logout(s);
  }

  // ---- order ticket -----------------------------------------------------------------------

  private wireTicket(): void {
    const setSide = (side: "BUY" | "SELL") => {
      this.side = side;
      $("side-buy").setAttribute("aria-pressed", String(side === "BUY"));
      $("side-sell").setAttribute("aria-pressed", String(side === "SELL"));
      this.ticketFields();
    };
    $("side-buy").addEventListener("click", () => setSide("BUY"));
    $("side-sell").addEventListener("click", () => setSide("SELL"));
    for (const id of ["o-type", "o-by", "o-post", "o-tif"]) {
      $(id).addEventListener("change", () => this.ticketFields());
    }
    for (const id of ["o-price", "o-qty"]) {
      $(id).addEventListener("input", () => this.ticketFields());
    }
    $("ticket").addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.place();
    });
  }

  /** Show the fields the chosen type takes, and the exact total of a limit order. */
  private ticketFields(): void {
    const m = this.market();
    if (!m) return;
    const type = select("o-type").value;
    const limitish = type !== "MARKET";
    const show = (name: string, on: boolean) => {
      for (const e of document.querySelectorAll<HTMLElement>(`#ticket [data-for="${name}"]`)) {
        e.hidden = !on;
      }
    };
    show("price", limitish);
    show("stop", type.endsWith("_LIMIT"));
    show("by", type === "MARKET");
    show("tif", limitish && !(type === "LIMIT" && input("o-post").checked));
    show("post", type === "LIMIT");
    show("iceberg", type === "LIMIT");
    const byQuote = type === "MARKET" && select("o-by").value === "quote";
    $("o-unit").textContent = byQuote ? m.quoteAsset : m.baseAsset;
    const price = input("o-price").value;
    const qty = input("o-qty").value;
    $("o-total").textContent =
      limitish && isDecimal(price) && isDecimal(qty)
        ? `Total ${trim(mul(price, qty))} ${m.quoteAsset}`
        : "";
    const submit = $("o-submit");
    submit.textContent = `${this.side === "BUY" ? "Buy" : "Sell"} ${m.baseAsset}`;
    submit.className = this.side === "BUY" ? "buy" : "sell";
  }

  /** The order's parameters as the dialect names them (docs/api.md, order types). */
  private orderParams(): Record<string, string> {
    const m = this.market();
    const type = select("o-type").value;
    const p: Record<string, string> = {
      symbol: m.symbol,
      side: this.side,
      newClientOrderId: clientId(),
      newOrderRespType: "RESULT", // status and executed quantity for every type
    };
    const need = (id: string, name: string) => {
      const v = input(id).value.trim();
      if (!isDecimal(v)) throw new Error(`${name}: enter a decimal number like 0.01`);
      return v;
    };
    const qty = need("o-qty", "Quantity");
    if (type === "MARKET") {
      p.type = "MARKET";
      if (select("o-by").value === "quote") p.quoteOrderQty = qty;
      else p.quantity = qty;
      return p;
    }
    p.quantity = qty;
    p.price = need("o-price", "Price");
    if (type === "LIMIT" && input("o-post").checked) {
      p.type = "LIMIT_MAKER";
    } else {
      p.type = type;
      p.timeInForce = select("o-tif").value;
    }
    if (type.endsWith("_LIMIT")) p.stopPrice = need("o-stop", "Stop price");
    const iceberg = input("o-iceberg").value.trim();
    if (type === "LIMIT" && iceberg) {
      if (!isDecimal(iceberg)) throw new Error("Iceberg: enter a decimal number");
      p.icebergQty = iceberg;
    }
    return p;
  }

  private async place(): Promise<void> {
    const msg = $("ticket-msg");
    if (!this.s) return;
    let params: Record<string, string>;
    try {
      params = this.orderParams();
    } catch (exc) {
      say(msg, String((exc as Error).message), "error");
      return;
    }
    say(msg, "Sending...");
    try {
      const r = await signed<{ orderId: number; status: string; executedQty: string }>(
        this.s,
        "POST",
        "/api/v3/order",
        params,
      );
      say(msg, `Order ${r.orderId}: ${r.status}, filled ${r.executedQty}`, "ok");
    } catch (exc) {
      say(msg, message(exc), "error");
    }
    await this.refresh();
  }

  // ---- account panels -------------------------------------------------------------------------

  async refresh(): Promise<void> {
    const s = this.s;
    if (!s) return;
    if (this.refreshing) {
      this.again = true; // an event came during this refresh: its effects may be missing
      return;
    }
    this.refreshing = true;
    const symbol = this.market().symbol;
    try {
      const [acct, open, orders, fills] = await Promise.all([
        signed<{ balances: { asset: string; free: string; locked: string }[] }>(s, "GET", "/api/v3/account", {
          omitZeroBalances: "true",
        }),
        signed<Order[]>(s, "GET", "/api/v3/openOrders", { symbol }),
        signed<Order[]>(s, "GET", "/api/v3/allOrders", { symbol, limit: "50" }),
        signed<Fill[]>(s, "GET", "/api/v3/myTrades", { symbol, limit: "50" }),
      ]);
      if (this.s !== s) return;
      rows(
        $("balances"),
        acct.balances.map((b) => [b.asset, b.free, b.locked]),
        "no balances",
      );
      for (const tr of $("balances").querySelectorAll("tr")) {
        const asset = tr.firstElementChild?.textContent ?? "";
        if (asset) tr.dataset.asset = asset;
      }
      this.renderOpen(open);
      rows(
        $("order-history"),
        orders
          .slice()
          .reverse()
          .map((o) => [time(o.time), o.side, o.type, priced(o), o.origQty, o.executedQty, o.status]),
        "no orders",
      );
      rows(
        $("trade-history"),
        fills
          .slice()
          .reverse()
          .map((f) => [
            time(f.time),
            f.isBuyer ? "BUY" : "SELL",
            f.price,
            f.qty,
            f.quoteQty,
            `${f.commission} ${f.commissionAsset}`,
            f.isMaker ? "maker" : "taker",
          ]),
        "no trades",
      );
      this.funds.coins(acct.balances.map((b) => b.asset));
    } catch (exc) {
      say($("ticket-msg"), message(exc), "error");
    } finally {
      this.refreshing = false;
      if (this.again) {
        this.again = false;
        void this.refresh();
      }
    }
  }

  private renderOpen(open: Order[]): void {
    if (this.editing) return; // an amend form is open: keep it until it is sent
    const tbody = $("open-orders");
    const data = open.map((o) => {
      const cancel = el("button", { type: "button", class: "small" }, "Cancel");
      cancel.addEventListener("click", () => void this.cancel(o));
      const amend = el("button", { type: "button", class: "small" }, "Amend");
      amend.addEventListener("click", () => this.amendForm(tr, o));
      const tr = el(
        "tr",
        { "data-order-id": String(o.orderId) },
        ...[time(o.time), o.side, o.type, priced(o), o.origQty, o.executedQty, o.status].map((c) =>
          el("td", {}, c),
        ),
        el("td", {}, amend, " ", cancel),
      );
      return tr;
    });
    if (data.length === 0) {
      rows(tbody, [], "no open orders");
      return;
    }
    tbody.replaceChildren(...data);
  }

  private async cancel(o: Order): Promise<void> {
    if (!this.s) return;
    try {
      await signed(this.s, "DELETE", "/api/v3/order", {
        symbol: o.symbol,
        orderId: String(o.orderId),
      });
      say($("ticket-msg"), `Order ${o.orderId} cancelled`, "ok");
    } catch (exc) {
      say($("ticket-msg"), message(exc), "error");
    }
    await this.refresh();
  }

  /** Amend keeps priority and only lowers the quantity (the venue's rule). */
  private amendForm(tr: HTMLElement, o: Order): void {
    const qty = el("input", { "aria-label": "New quantity", inputmode: "decimal", value: o.origQty });
    const save = el("button", { type: "submit", class: "small" }, "Save");
    const form = el("form", { class: "inline" }, qty, save);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void this.amend(o, qty.value.trim());
    });
    this.editing = true;
    (tr.lastElementChild as HTMLElement).replaceChildren(form);
    qty.focus();
  }

  private async amend(o: Order, newQty: string): Promise<void> {
    if (!this.s) return;
    try {
      if (!isDecimal(newQty)) throw new Error("New quantity: enter a decimal number");
      await signed(this.s, "PUT", "/api/v3/order/amend/keepPriority", {
        symbol: o.symbol,
        orderId: String(o.orderId),
        newQty,
      });
      say($("ticket-msg"), `Order ${o.orderId} amended to ${newQty}`, "ok");
    } catch (exc) {
      say($("ticket-msg"), message(exc), "error");
    }
    this.editing = false;
    await this.refresh();
  }

  // ---- tabs and funds -------------------------------------------------------------------------

  private wireTabs(): void {
    const buttons = $("account-tabs").querySelectorAll<HTMLButtonElement>("[data-tab]");
    for (const b of buttons) {
      b.addEventListener("click", () => {
        for (const o of buttons) o.setAttribute("aria-selected", String(o === b));
        for (const pane of $("account-tabs").querySelectorAll<HTMLElement>("[data-pane]")) {
          pane.hidden = pane.dataset.pane !== b.dataset.tab;
        }
        if (b.dataset.tab === "funds") void this.funds.show();
      });
    }
  }
}

/** The limit price, and the trigger of a stop or take-profit. */
function priced(o: Order): string {
  return o.stopPrice && !isZero(o.stopPrice) ? `${o.price} (stop ${o.stopPrice})` : o.price;
}
