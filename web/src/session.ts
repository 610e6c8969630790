// The trading session: an API key and its secret, kept in this tab's sessionStorage (gone when
// the tab closes; nothing in cookies, so no request carries credentials by itself and there is
// nothing for a cross-site request to ride on). Logging in with email and password gets a
// back-office session (bearer access token) and makes a read+trade API key for this tab,
// revoked again at log out.
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
    { permissions: ["read", "trade"] },
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

/** Revoke this tab's key and end the back-office session (refreshing the 300 s access token
 * first if it expired); the local session is dropped whatever the server says. */
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
  if (s.ownKey) {
    await backoffice("DELETE", `/api/v1/me/api-keys/${s.apiKey}`, undefined, access).catch(
      () => undefined,
    );
  }
  await backoffice("POST", "/api/v1/auth/logout", {}, access).catch(() => undefined);
}

export function resume(): Promise<void> {
  return syncClock();
}
