// The public APIs as the pages use them: market data (public REST), signed REST (HMAC-SHA256
// by WebCrypto, keyed with the session's API secret), the back office (bearer access token)
// and the operator's /admin endpoints (admin token). Errors keep the venue's code and message.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | string,
    message: string,
  ) {
    super(message);
  }
  override toString(): string {
    return `${this.message} (${this.code})`;
  }
}

async function parse(resp: Response): Promise<unknown> {
  const text = await resp.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(resp.status, resp.status, text.slice(0, 200) || resp.statusText);
  }
  if (!resp.ok) {
    const b = body as { code?: number; msg?: string; error?: { code?: string; message?: string } };
    if (b && typeof b === "object" && b.error && typeof b.error === "object") {
      throw new ApiError(resp.status, b.error.code ?? resp.status, b.error.message ?? "");
    }
    throw new ApiError(resp.status, b?.code ?? resp.status, b?.msg ?? resp.statusText);
  }
  return body;
}

/** An error as the pages show it: the venue's message and code when it is the venue's. */
export function describe(exc: unknown): string {
  return exc instanceof ApiError ? exc.toString() : String(exc);
}

export async function getJson<T>(path: string, params: Record<string, string> = {}): Promise<T> {
  const qs = new URLSearchParams(params).toString();
  return (await parse(await fetch(qs ? `${path}?${qs}` : path))) as T;
}

// ---- signed REST -------------------------------------------------------------------------

export interface KeyCreds {
  apiKey: string;
  secret: string;
}

let clockOffsetMs = 0;

/** Server time minus local time, so `timestamp` falls inside the server's window. */
export async function syncClock(): Promise<void> {
  const t0 = Date.now();
  const { serverTime } = await getJson<{ serverTime: number }>("/api/v3/time");
  clockOffsetMs = serverTime - Math.round((t0 + Date.now()) / 2);
}

/** Milliseconds on the server's clock (for `timestamp`), a little behind to stay inside the
 * server's "not more than 1 s ahead" rule. */
export function serverNow(): number {
  return Date.now() + clockOffsetMs - 200;
}

function encode(params: Record<string, string>): string {
  return Object.entries(params)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

export async function hmacHex(secret: string, payload: string): Promise<string> {
  if (!globalThis.crypto?.subtle) {
    throw new ApiError(0, "INSECURE", "Signing needs a secure context (HTTPS or loopback).");
  }
  const enc = new TextEncoder();
  const k = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", k, enc.encode(payload)));
  return Array.from(sig, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A signed request: every parameter in the query string (GET/DELETE/PUT) or the form body
 * (POST), `signature` last over the bytes as sent. */
export async function signed<T>(
  creds: KeyCreds,
  method: "GET" | "POST" | "DELETE" | "PUT",
  path: string,
  params: Record<string, string> = {},
): Promise<T> {
  const all = { ...params, timestamp: String(serverNow()) };
  const payload = encode(all);
  const carried = `${payload}&signature=${await hmacHex(creds.secret, payload)}`;
  const headers: Record<string, string> = { "X-MBX-APIKEY": creds.apiKey };
  let url = path;
  let body: string | undefined;
  if (method === "POST") {
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    body = carried;
  } else {
    url = `${path}?${carried}`;
  }
  return (await parse(await fetch(url, { method, headers, body }))) as T;
}

// ---- back office (users and sessions) ------------------------------------------------------

export async function backoffice<T>(
  method: string,
  path: string,
  body?: unknown,
  bearer?: string,
): Promise<T> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  const resp = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return (await parse(resp)) as T;
}

// ---- operator endpoints ----------------------------------------------------------------------

export async function admin<T>(
  token: string,
  method: "GET" | "POST",
  action: string,
  body?: unknown,
): Promise<T> {
  const headers: Record<string, string> = { "X-Kootabase-Admin-Token": token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(`/admin/${action}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 403) throw new ApiError(403, 403, "admin: loopback and token required");
  return (await parse(resp)) as T;
}
