"""``blindmatch demo``: a holder and a requester on this machine, end to end.

Exit 0 only when the matches equal the synthetic truth exactly, the holder refused
each of the eight refusals of the legal setting (and the cardinality minimum), and both
audit logs verify against the witness that cosigned them and reconcile.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a holder and a requester end to end on synthetic data",
        description="Create (or reuse) a workspace with both organisations' configuration, keys, "
        "certificates and synthetic data; build the index; start 'blindmatch holder serve'; run "
        "'blindmatch requester match'; compare with the truth; try each policy refusal; stop the holder; "
        "verify both audit logs against the witness that cosigned them ('blindmatch witness serve') and reconcile them.",
    )
    parser.add_argument("--workdir", type=Path, metavar="DIR", help="workspace to create or reuse (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON line (the last line)")
    parser.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from blindmatch.pilot.demo import demo_ok, run_demo

    if args.workdir is not None:
        summary = run_demo(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="blindmatch-demo-") as tmp:
            summary = run_demo(Path(tmp))
    ok = demo_ok(summary)
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    else:
        _print_human(summary, ok, keep=args.workdir is not None)
    return 0 if ok else 1


def _print_human(summary: dict[str, object], ok: bool, keep: bool) -> None:
    print(f"holder: {summary['holder_records']} records indexed; requester: {summary['queries']} queries, "
          f"{summary['ineligible_records']} held back as ineligible (order date missing or in the future)")
    print(f"matches: {summary['matches']} of {summary['expected_matches']} expected; "
          f"false matches {summary['false_matches']}, missed {summary['missed_matches']}")
    eligibility = summary["eligibility"]
    assert isinstance(eligibility, dict)
    print(f"issuer: {eligibility['tokens_issued']} records got eligibility tokens, {eligibility['ineligible_records']} "
          f"refused; made-up tokens for {eligibility['ineligible_tried']} ineligible people the holder has matched "
          f"{eligibility['ineligible_matched']}")
    refusals = summary["refusals"]
    others = summary["other_refusals"]
    assert isinstance(refusals, dict) and isinstance(others, dict)
    for reason, status in (*refusals.items(), *others.items()):
        print(f"  refusal {reason:<20} -> {status}")
    audit = summary["audit"]
    assert isinstance(audit, dict)
    print(f"audit logs: holder {audit['holder']}, requester {audit['requester']}, reconciled {audit['reconcile']}")
    witness = summary["witness"]
    assert isinstance(witness, dict)
    print(f"witness {witness['name']}: cosigned the holder's log at size {witness['holder_cosigned_size']} and the "
          f"requester's at size {witness['requester_cosigned_size']}; 'audit verify --witness': holder "
          f"{witness['verify_holder']}, requester {witness['verify_requester']}; 'audit reconcile' {witness['reconcile']}")
    print(f"{'OK' if ok else 'FAILED'} in {summary['seconds']} s")
    if keep:
        workdir = Path(str(summary["workdir"]))
        print(f"workspace kept: try\n  blindmatch witness serve --config {workdir / 'witness/witness.toml'}\n"
              f"  blindmatch holder serve --config {workdir / 'holder/holder.toml'}\n"
              f"  blindmatch requester match {workdir / 'requester/queries.csv'} "
              f"--config {workdir / 'requester/requester.toml'} --out results.csv\n"
              f"  blindmatch audit verify {workdir / 'holder'} --witness {workdir / 'witness/witness.key.pub'}")
