"""``kootabase audit ...``: the audit chain and the proof of liabilities.

- ``audit verify --journal DIR [--anchor FILE ...]``: walk the journal's hash chain end to end
  (`engine.auditchain.verify_chain`); exit 3 naming the first bad sequence.
- ``audit anchor --journal DIR [--seq N] [--out FILE]``: the chain head at a sequence, as a
  small JSON document to publish.
- ``audit liabilities --journal DIR --as-of SEQ --out DIR``: Merkle-sum trees per asset,
  reconciled with the ledger (`ledger.liabilities`).
- ``audit verify-proof PROOF --root ROOT``: the standalone verifier (`ledger.polverify`): no
  journal, no exchange.

Parsers only here; implementations are imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.usererror import UserError
from gateway.cliargs import non_negative_int, positive_int
from gateway.clustercli import add_nats_options


def add_audit_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    audit = sub.add_parser("audit", help="audit chain, anchors and proof of liabilities")
    asub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)

    verify = asub.add_parser("verify", help="check the journal's hash chain end to end")
    verify.add_argument("--journal", type=Path, metavar="DIR", help="journal dir (or --nats)")
    add_nats_options(verify)
    verify.add_argument(
        "--anchor",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a published anchor the chain must pass through (repeatable)",
    )
    verify.set_defaults(handler=run_verify_cli)

    anchor = asub.add_parser("anchor", help="export the chain head at a sequence (publishable)")
    anchor.add_argument("--journal", type=Path, metavar="DIR", help="journal dir (or --nats)")
    add_nats_options(anchor)
    anchor.add_argument("--seq", type=positive_int, metavar="SEQ", help="default: the last record")
    anchor.add_argument("--out", type=Path, metavar="FILE", help="write here (default: stdout)")
    anchor.set_defaults(handler=run_anchor_cli)

    liab = asub.add_parser("liabilities", help="Merkle-sum proof of liabilities at a sequence")
    liab.add_argument("--journal", type=Path, required=True, metavar="DIR")
    liab.add_argument("--as-of", type=non_negative_int, required=True, metavar="SEQ")
    liab.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output directory (default: <data dir>/liabilities/<SEQ>, beside the journal)",
    )
    liab.set_defaults(handler=run_liabilities_cli)

    vp = asub.add_parser("verify-proof", help="check a user's proof (no exchange access)")
    vp.add_argument("proof", type=Path, metavar="PROOF")
    vp.add_argument(
        "--root",
        action="append",
        required=True,
        metavar="ROOT",
        help="the published liabilities.json, or a root hash (ASSET=HEX or HEX; repeatable)",
    )
    vp.set_defaults(handler=run_verify_proof_cli)


def _journal(path: Path) -> Path:
    from engine.datadir import require_journal_dir

    if not path.is_dir():
        raise UserError(f"journal directory {path} does not exist", hint="check --journal")
    return require_journal_dir(path)


def _one_source(args: argparse.Namespace) -> None:
    if bool(args.journal) == bool(args.nats):
        raise UserError("give exactly one of --journal DIR or --nats URL", exit_code=2)


def _stream_chain(args: argparse.Namespace, seqs: list[int]) -> tuple[object, dict[int, object]]:
    """Replay the cluster's stream computing the chain (no digest is stored there)."""
    import asyncio

    from engine.auditchain import stream_chain
    from engine.streamlog import StreamLog
    from gateway.clustercli import nats_options, stream_spec

    try:
        options, spec = nats_options(args, "kootabase-audit"), stream_spec(args)
    except ValueError as exc:
        raise UserError(str(exc), exit_code=2) from None

    async def run() -> tuple[object, dict[int, object]]:
        log = await StreamLog.connect(options, spec, create=False)  # read-only: never creates
        try:
            return await stream_chain(log, seqs)
        finally:
            await log.close()

    return asyncio.run(run())


def run_verify_cli(args: argparse.Namespace) -> int:
    from engine.auditchain import ChainBroken, load_anchor, verify_chain

    _one_source(args)
    anchors = [load_anchor(p) for p in args.anchor]
    if args.nats:
        last, found = _stream_chain(args, [a.seq for a in anchors])
        for a in anchors:
            got = found.get(a.seq)
            if got is None:
                raise ChainBroken(a.seq, "the stream ends before this anchored sequence")
            if got != a:
                raise ChainBroken(a.seq, "the stream's chain head differs from the anchor's")
        print(
            f"stream chain computed to {getattr(last, 'seq', 0)}, head "
            f"{getattr(last, 'head', '-')} ({len(anchors)} anchor(s) matched)"
        )
        return 0
    report = verify_chain(_journal(args.journal), anchors)
    print(
        f"chain intact: records {report.first_seq}..{report.last_seq}, head {report.head}"
        f" ({report.recomputed_v1} version-1 records recomputed, "
        f"{report.anchors_matched} anchor(s) matched)"
    )
    return 0


def run_anchor_cli(args: argparse.Namespace) -> int:
    from engine.auditchain import Anchor, anchor_at, encode_anchor

    _one_source(args)
    if args.nats:
        last, found = _stream_chain(args, [args.seq] if args.seq else [])
        got = found.get(args.seq) if args.seq else last
        if last is None:
            raise UserError("the stream holds no record: nothing to anchor")
        if not isinstance(got, Anchor):
            end = getattr(last, "seq", 0)
            raise UserError(f"the stream's records end at sequence {end}, not {args.seq}")
        data = encode_anchor(got)
    else:
        data = encode_anchor(anchor_at(_journal(args.journal), args.seq))
    if args.out is None:
        sys.stdout.write(data.decode())
    else:
        try:
            args.out.write_bytes(data)
        except OSError as exc:
            raise UserError(f"cannot write {args.out}: {exc.strerror or exc}") from None
    return 0


def run_liabilities_cli(args: argparse.Namespace) -> int:
    from engine.auditchain import anchor_at
    from ledger.liabilities import build_all, published_document, reconcile, write_outputs
    from ledger.reports import BeyondEnd, replay_book

    journal = _journal(args.journal)
    book = replay_book(journal, to_seq=args.as_of)
    if args.as_of > book.last_seq:
        raise BeyondEnd(
            "the journal", book.last_seq, args.as_of, hint="ask for a sequence at or before its end"
        )
    if args.as_of == 0:
        raise UserError("sequence 0 is before any record: nothing is owed yet")
    trees = build_all(book, args.as_of)
    rec = reconcile(book, args.as_of, trees)
    head = anchor_at(journal, args.as_of).head
    out = args.out or journal.parent / "liabilities" / str(args.as_of)
    published = published_document(trees, args.as_of, head, rec)
    try:
        accounts = write_outputs(out, trees, args.as_of, published)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    for r in rec:
        tree = trees[r.asset_id]
        print(
            f"{r.symbol}: root {tree.root[0].hex()} total {r.liabilities_atoms} atoms "
            f"({len(tree.levels[0])} accounts); fees {r.fees_atoms}, custody {r.custody_atoms}"
            + (f", of which demo {r.demo_atoms}" if r.demo_atoms else "")
            + ": reconciled"
        )
    print(f"wrote {out / 'liabilities.json'} and {accounts} proof file(s) in {out / 'proofs'}")
    return 0


def run_verify_proof_cli(args: argparse.Namespace) -> int:
    from ledger.polverify import ProofInvalid, load_roots, verify_proof

    try:
        doc = json.loads(args.proof.read_text())
    except OSError as exc:
        raise UserError(f"cannot read {args.proof}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UserError(f"{args.proof} is not JSON: {exc}") from None
    try:
        if not isinstance(doc, dict):
            raise ProofInvalid("the proof is not a JSON object")
        done = verify_proof(doc, load_roots(args.root, doc))
    except ProofInvalid as exc:
        raise UserError(f"proof refused: {exc}", exit_code=3) from None
    for v in done:
        print(
            f"valid: account {v.account} held {v.balance_atoms} atoms of {v.asset} after seq "
            f"{v.as_of_seq}, included in root {v.root} (total {v.total_atoms})"
        )
    return 0
