// The operations console's venue health: every replica of the cluster (not only the one this
// page's requests reach), from GET /ops/v1/health/overview (every staff role) or, opened with
// the admin token, the same answer from GET /admin/health/overview. Each replica's
// stream position, lag and checkpoint digest with whether it agrees with the digest recorded
// at that point; the NATS stream's leader and peers (current or lagging); this gateway's ledger
// follower (projection lag) and custody watchers. In single-process mode the same panel shows
// the one process. A failed read (NATS, PostgreSQL) comes back named in `error`.
import { $, el, rows, say, time } from "./dom";
import type { Operator } from "./operators";

export interface ReplicaRow {
  replica: string;
  role: string;
  self: boolean;
  stream_seq: number;
  lag: number;
  last_seq: number;
  digest: string;
  checkpoint_seq: number;
  recorded: string | null;
  agrees: boolean | null;
  reported_ms_ago: number;
  stale: boolean;
}

interface Peer {
  name: string;
  current: boolean;
  offline: boolean;
  lag: number;
  active_ms: number;
}

interface Watcher {
  chain: string;
  ok: boolean | null;
  tip: number | null;
  last_ok_ms: number | null;
  error: string;
  signer: boolean;
  open_alerts: number;
}

export interface Overview {
  mode: "single" | "cluster";
  self: { replica: string; ready: boolean; reason: string | null; last_seq: number; state_hash: string | null; state_hash_seq: number };
  stream: {
    name: string;
    messages: number;
    last_stream_seq: number;
    replicas: number;
    leader: string | null;
    peers: Peer[];
    healthy: boolean;
  } | null;
  replicas: ReplicaRow[];
  agreement: "single" | "agree" | "disagree" | "unknown";
  ledger_follower: {
    ok: boolean;
    state: string;
    restarts: number;
    projected_seq: number | null;
    lag: number | null;
    error: string;
    lastError: string | null;
  } | null;
  custody: Watcher[];
  error: string;
}

function flag(ok: boolean | null, yes = "yes", no = "no"): HTMLElement {
  if (ok === null) return el("span", { class: "mono" }, "?");
  return el("span", { class: ok ? "buy" : "sell" }, ok ? yes : no);
}

const short = (digest: string | null) => (digest ? digest.slice(0, 16) : "-");

export async function loadOverview(op: Operator): Promise<void> {
  const o = await op.overview<Overview>();
  const bad = o.agreement === "disagree" || !!o.error || (o.stream !== null && !o.stream.healthy);
  const where =
    o.mode === "cluster"
      ? `${o.replicas.length} replica(s); hashes: ${o.agreement}` +
        (o.stream ? `; stream ${o.stream.name} R${o.stream.replicas}, leader ${o.stream.leader ?? "-"}` : "")
      : `single process at seq ${o.self.last_seq}`;
  say($("c-overview-msg"), o.error ? `${where}; ${o.error}` : where, bad ? "error" : "ok");
  $("c-overview").dataset.agreement = o.agreement;
  const replicas: ReplicaRow[] =
    o.mode === "cluster"
      ? o.replicas
      : [
          {
            replica: o.self.replica,
            role: "gateway",
            self: true,
            stream_seq: o.self.last_seq,
            lag: 0,
            last_seq: o.self.last_seq,
            digest: o.self.state_hash ?? "",
            checkpoint_seq: o.self.state_hash_seq,
            recorded: null,
            agrees: null,
            reported_ms_ago: 0,
            stale: false,
          },
        ];
  rows(
    $("c-overview"),
    replicas.map((r) => [
      el("span", { class: "mono", title: r.self ? "this gateway" : "" }, r.self ? `${r.replica} (this)` : r.replica),
      r.role,
      el("span", { class: "mono" }, String(r.stream_seq)),
      el("span", { class: `mono ${r.lag > 0 ? "sell" : ""}` }, String(r.lag)),
      el("span", { class: "mono" }, String(r.last_seq)),
      el("span", { class: "mono", title: r.digest }, `${short(r.digest)} @ ${r.checkpoint_seq}`),
      flag(r.agrees, "agrees", "DIFFERS"),
      el("span", { class: r.stale ? "sell" : "" }, `${(r.reported_ms_ago / 1000).toFixed(1)} s ago`),
    ]),
    "no replica has reported yet",
  );
  rows(
    $("c-peers"),
    (o.stream?.peers ?? []).map((p) => [
      el("span", { class: "mono" }, p.name === o.stream?.leader ? `${p.name} (leader)` : p.name),
      flag(p.current && !p.offline, "current", p.offline ? "offline" : "lagging"),
      el("span", { class: "mono" }, String(p.lag)),
      `${(p.active_ms / 1000).toFixed(1)} s ago`,
    ]),
    o.mode === "cluster"
      ? `stream ${o.stream?.name ?? "?"}: one server (R1), leader ${o.stream?.leader ?? "-"}`
      : "not clustered (local journal)",
  );
  const lf = o.ledger_follower;
  const followers = lf
    ? [
        [
          "ledger follower",
          flag(lf.ok && !lf.error),
          el(
            "span",
            { class: "mono" },
            `${lf.state}; projected seq ${lf.projected_seq ?? "?"}, lag ${lf.lag ?? "?"}; restarts ${lf.restarts}` +
              (lf.error || lf.lastError ? `; ${lf.error || lf.lastError}` : ""),
          ),
        ],
      ]
    : [];
  const watchers = o.custody.map((w) => [
    `custody watcher ${w.chain}`,
    flag(w.ok),
    el(
      "span",
      { class: "mono" },
      `tip ${w.tip ?? "?"}; last ok ${w.last_ok_ms ? time(w.last_ok_ms) : "never"}; signer ${w.signer ? "here" : "elsewhere"}; ` +
        `open alerts ${w.open_alerts}${w.error ? `; ${w.error}` : ""}`,
    ),
  ]);
  rows($("c-parts"), [...followers, ...watchers], "no ledger follower or custody watcher in this gateway");
}
