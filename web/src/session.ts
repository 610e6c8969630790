// The trading session: an API key and its secret, kept in this tab's sessionStorage (gone when
// the tab closes; nothing in cookies, so no request carries credentials by itself and there is
// nothing for a cross-site request to ride on). Logging in with email and password gets a
// back-office session (bearer access token) and a read+trade *session key* for this tab: the
// server revokes it when the session ends (log out, or the session idle for 15 minutes, which
// is what a closed tab leaves behind; `backoffice/sessionkeys.py`). While the page is open it
// refreshes the session every few minutes (`keepAlive`), which keeps the key alive.
import { ApiError, backoffice, type KeyCreds, syncClock } from "./api";

export interface Session extends KeyCreds {
  label: string;
  access?: string;
  refresh?: string;
  ownKey?: boolean;
}

const KEY = "kootabase.session";

export function load(): Session | null {
  const raw = sessionStorage.getItem(KEY);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as Session;
  } catch {
    return null;
  }
}

function save(s: Session): Session {
  sessionStorage.setItem(KEY, JSON.stringify(s));
  return s;
}

interface Tokens {
  access_token: string;
  refresh_token: string;
}

export async function signup(email: string, password: string): Promise<void> {
  await backoffice("POST", "/api/v1/auth/signup", { email, password });
}

export async function loginUser(email: string, password: string, totp: string): Promise<Session> {
  const body: Record<string, string> = { email, password };
  if (totp) body.totp = totp;
  const t = await backoffice<Tokens>("POST", "/api/v1/auth/login", body);
  const key = await backoffice<{ api_key: string; secret: string }>(
    "POST",
    "/api/v1/me/api-keys",
    { permissions: ["read", "trade"], session: true },
    t.access_token,
  );
  await syncClock();
  return save({
    label: email,
    apiKey: key.api_key,
    secret: key.secret,
    access: t.access_token,
    refresh: t.refresh_token,
    ownKey: true,
  });
}

export async function loginKey(apiKey: string, secret: string): Promise<Session> {
  await syncClock();
  return save({ label: `key ${apiKey.slice(0, 8)}...`, apiKey, secret });
}

/** Well inside the server's 15 min idle limit for session keys (and it renews the 300 s
 * access token, which logging out needs). */
export const KEEPALIVE_MS = 4 * 60_000;

/** Refresh the back-office session of an email login (no-op for an API-key login). Resolves
 * false when the server says the session is over (logged out elsewhere, idle too long): its key
 * is revoked too, and the page must log in again. A network failure keeps the session. */
export async function keepAlive(s: Session): Promise<boolean> {
  if (!s.refresh) return true;
  try {
    const t = await backoffice<Tokens>("POST", "/api/v1/auth/refresh", {
      refresh_token: s.refresh,
    });
    s.access = t.access_token;
    s.refresh = t.refresh_token;
    if (sessionStorage.getItem(KEY)) save(s);
    return true;
  } catch (exc) {
    return !(exc instanceof ApiError && exc.status === 401);
  }
}

/** End the back-office session, which revokes this tab's session key on the server
 * (refreshing the 300 s access token first if it expired); the local session is dropped
 * whatever the server says. */
export async function logout(s: Session): Promise<void> {
  sessionStorage.removeItem(KEY);
  if (!s.refresh) return;
  let access = s.access;
  try {
    const t = await backoffice<Tokens>("POST", "/api/v1/auth/refresh", {
      refresh_token: s.refresh,
    });
    access = t.access_token;
  } catch (exc) {
    if (!(exc instanceof ApiError)) throw exc;
  }
  if (!access) return;
  await backoffice("POST", "/api/v1/auth/logout", {}, access).catch(() => undefined);
}

export function resume(): Promise<void> {
  return syncClock();
}
