// Who the operations console acts as, and the two APIs behind it: a staff session on the
// operator API (/ops/v1: roles checked by the server, actions journaled with the staff id,
// four eyes) or the admin token on the loopback-only /admin endpoints.
import { admin, backoffice } from "./api";

export interface MarketRow {
  symbol: string;
  state: string;
}

export interface AccountRow {
  account_id: number;
  demo?: boolean;
  email?: string | null;
  frozen?: boolean;
  tier?: number | null;
  open_orders: number;
  balances?: Record<string, { free: string; locked: string }>;
}

export interface Withdrawal {
  withdrawal_id: number;
  account_id: number;
  asset: string;
  amount: string;
  address: string;
  review: string[];
  decisions: { staff_id: string; decision: string; note: string }[];
}

export interface AmlCase {
  case_id: string;
  rule_id: string;
  kind: string;
  account_id: number;
  withdrawal_id: number;
  detail: string;
  status: string;
  assignee: string;
}

export interface CaseNote {
  staff_id: string;
  kind: string;
  body: string;
  at_ns: number;
}

export interface CustodyAlert {
  alert_id: number;
  chain: string;
  kind: string;
  detail: string;
}

export interface KycSubmission {
  submission_id: string;
  account_id: number;
  email: string;
  requested_tier: number;
  documents: { type: string; country: string; sha256: string; size_bytes: number }[];
  status: string;
  submitted_ms: number;
  staff_id: string | null;
  tier: number | null;
  reason: string | null;
  seq: number | null;
}

export interface AuditEntry {
  seq: number;
  time_ms: number;
  action: string;
  staff_id: string;
  account_id?: number;
  symbol?: string;
  state?: string;
  tier?: number;
  withdrawal_id?: number;
  note?: string;
}

/** Who the console acts as: a staff session (the operator API, /ops/v1, roles and four eyes)
 * or the admin token (the loopback-only /admin endpoints). */
export interface Operator {
  readonly staff: boolean;
  markets(): Promise<MarketRow[]>;
  setState(symbol: string, state: string): Promise<{ symbol: string; state: string; seq: number }>;
  accounts(): Promise<AccountRow[]>;
  /** The venue health overview: the same answer for the staff console and the admin token. */
  overview<T>(): Promise<T>;
}

export class AdminToken implements Operator {
  readonly staff = false;
  constructor(private readonly token: string) {}
  overview<T>(): Promise<T> {
    return admin<T>(this.token, "GET", "health/overview");
  }
  markets(): Promise<MarketRow[]> {
    return admin(this.token, "GET", "markets");
  }
  setState(symbol: string, state: string) {
    return admin<{ symbol: string; state: string; seq: number }>(this.token, "POST", "markets/state", {
      symbol,
      state,
    });
  }
  accounts(): Promise<AccountRow[]> {
    return admin(this.token, "GET", "accounts");
  }
}

export class StaffSession implements Operator {
  readonly staff = true;
  constructor(readonly bearer: string) {}
  overview<T>(): Promise<T> {
    return backoffice<T>("GET", "/ops/v1/health/overview", undefined, this.bearer);
  }
  private call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return backoffice<T>(method, `/ops/v1/${path}`, body, this.bearer);
  }
  markets(): Promise<MarketRow[]> {
    return this.call("GET", "markets");
  }
  setState(symbol: string, state: string) {
    return this.call<{ symbol: string; state: string; seq: number }>(
      "POST",
      `markets/${encodeURIComponent(symbol)}/state`,
      { state },
    );
  }
  accounts(): Promise<AccountRow[]> {
    return this.call("GET", "accounts?limit=50");
  }
  withdrawals(): Promise<Withdrawal[]> {
    return this.call("GET", "withdrawals");
  }
  decide(id: number, approve: boolean, reason = ""): Promise<Withdrawal> {
    return approve
      ? this.call("POST", `withdrawals/${id}/approve`)
      : this.call("POST", `withdrawals/${id}/reject`, { reason });
  }
  audit(
    fromSeq: number,
    filter: Record<string, string> = {},
  ): Promise<{ entries: AuditEntry[]; next_seq: number }> {
    const q = new URLSearchParams({ from_seq: String(fromSeq), limit: "1000", ...filter });
    return this.call("GET", `audit?${q}`);
  }
  amlCases(): Promise<AmlCase[]> {
    return this.call("GET", "aml/cases?status=open");
  }
  closeCase(caseId: string, outcome: string, note: string): Promise<AmlCase> {
    return this.call("POST", `aml/cases/${encodeURIComponent(caseId)}/close`, { outcome, note });
  }
  assignCase(caseId: string, staffId: string): Promise<AmlCase> {
    return this.call("POST", `aml/cases/${encodeURIComponent(caseId)}/assign`, { staff_id: staffId });
  }
  commentCase(caseId: string, body: string): Promise<AmlCase & { notes: CaseNote[] }> {
    return this.call("POST", `aml/cases/${encodeURIComponent(caseId)}/comment`, { body });
  }
  kycQueue(): Promise<KycSubmission[]> {
    return this.call("GET", "kyc?status=pending");
  }
  approveKyc(id: string, tier: number): Promise<KycSubmission> {
    return this.call("POST", `kyc/${encodeURIComponent(id)}/approve`, { tier });
  }
  rejectKyc(id: string, reason: string): Promise<KycSubmission> {
    return this.call("POST", `kyc/${encodeURIComponent(id)}/reject`, { reason });
  }
  custodyAlerts(): Promise<CustodyAlert[]> {
    return this.call("GET", "custody/alerts");
  }
  me(): Promise<{ staff_id: string; email: string; role: string }> {
    return this.call("GET", "me");
  }
  setFrozen(accountId: number, frozen: boolean): Promise<{ seq: number }> {
    return this.call("POST", `accounts/${accountId}/${frozen ? "freeze" : "unfreeze"}`, {});
  }
  setTier(accountId: number, tier: number): Promise<{ seq: number }> {
    return this.call("POST", `accounts/${accountId}/tier`, { tier });
  }
  logout(): Promise<unknown> {
    return this.call("POST", "auth/logout");
  }
}
