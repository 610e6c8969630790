// Small DOM helpers: elements are built with textContent only (never innerHTML), so nothing a
// server or a user sends can become markup.

export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el;
}

export function input(id: string): HTMLInputElement {
  return $(id) as HTMLInputElement;
}

export function select(id: string): HTMLSelectElement {
  return $(id) as HTMLSelectElement;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

export function rows(tbody: HTMLElement, data: (Node | string)[][], empty = "none"): void {
  const trs = data.map((cells) => el("tr", {}, ...cells.map((c) => el("td", {}, c))));
  if (trs.length === 0) {
    const td = el("td", { class: "empty" }, empty);
    td.colSpan = 20;
    trs.push(el("tr", {}, td));
  }
  tbody.replaceChildren(...trs);
}

export function say(target: HTMLElement, text: string, kind: "ok" | "error" | "" = ""): void {
  target.textContent = text;
  target.dataset.kind = kind;
}

export function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").slice(0, 19);
}
