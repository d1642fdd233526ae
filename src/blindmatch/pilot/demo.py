"""A complete two-organisation pilot on one machine, and its checks.

``pilot.workspace`` writes both organisations' files, ``pilot.processes`` runs
``blindmatch`` commands (the holder daemon among them) and ``pilot.probes`` asks the live
holder for sessions it must refuse. ``HolderProcess`` runs ``blindmatch holder serve`` as a real subprocess; ``run_demo``
prepares the job, has two officials approve it through the CLI (``pilot.officials``),
matches over the issuer's eligibility tokens (``pilot.eligibility``), compares with the truth, plays a requester
that skips its eligibility check with made-up tokens, and tries each of the eight refusals the legal setting
names (``refusals``) plus the cardinality minimum (``other_refusals``) against the live holder. A witness daemon
(``pilot.witness``) cosigns both audit logs throughout; afterwards each log is verified against it and the pair
reconciled, as a reviewer would (``witness``). Tests reuse these pieces with smaller sizes.
"""

from __future__ import annotations

import csv
import json
import subprocess
import time
from pathlib import Path

from blindmatch.audit import reconcile, verify_log
from blindmatch.crypto.batch import BatchEngine
from blindmatch.pilot.eligibility import install_issuer, issue, try_without_tokens
from blindmatch.pilot.officials import approve_job
from blindmatch.pilot.probes import LEGAL_REFUSALS, OTHER_REFUSALS, try_refusals
from blindmatch.pilot.processes import HolderProcess, IssuerProcess, WitnessProcess, blindmatch_command, build_index
from blindmatch.pilot.witness import (
    install_witness,
    review,
    submit_requester_checkpoint,
    wait_until_cosigned,
    witness_key,
)
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import load_requester_config
from blindmatch.vocabulary import ExitCode

# A session of more match keys needs two officials' signatures (the demo's one session does).
DEMO_DUAL_CONTROL_RECORDS = 1_000


def compare_results(results: Path, truth: list[bool]) -> dict[str, int]:
    """Counts of the demo's answer key against RESULTS.csv (ineligible rows expect no answer).

    A match is a confirmation (``confirms`` true); a match at a review tier is counted apart
    (``review_matches``, ``review_false``), as a candidate a person would check.
    """
    counts = {"expected_matches": 0, "matches": 0, "false_matches": 0, "missed_matches": 0, "ineligible_records": 0,
              "ineligible_answered": 0, "review_matches": 0, "review_false": 0}
    with results.open(encoding="utf-8", newline="") as handle:
        for row, expected in zip(csv.DictReader(handle), truth, strict=True):
            if row["status"].startswith("ineligible:"):
                counts["ineligible_records"] += 1
                counts["ineligible_answered"] += row["matched"] != ""
                continue
            got = row["matched"] == "true" and row.get("confirms", "true") == "true"
            review = row["matched"] == "true" and not got
            counts["review_matches"] += review
            counts["review_false"] += review and not expected
            counts["expected_matches"] += expected
            counts["matches"] += got
            counts["false_matches"] += got and not expected
            counts["missed_matches"] += expected and not got
    return counts


def run_match(workspace: Workspace, results: Path, *, awaiting: bool = False) -> dict[str, object]:
    """``blindmatch requester match`` as a subprocess; its JSON summary. With ``awaiting``
    the job is expected to stop prepared, waiting for the officials (exit code 6)."""
    done = subprocess.run(
        blindmatch_command("requester", "match", str(workspace.queries), "--config", str(workspace.requester_config),
                           "--out", str(results), "--json", "--no-progress"),
        capture_output=True, text=True,
    )
    expected = ExitCode.AWAITING_APPROVAL if awaiting else ExitCode.OK
    if done.returncode != expected:
        raise RuntimeError(f"requester match exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    summary: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def run_demo(root: Path) -> dict[str, object]:
    """Build, serve, match, compare, probe the refusals, stop; the summary the CLI prints."""
    started = time.monotonic()
    workspace = create_workspace(root, dual_control_records=DEMO_DUAL_CONTROL_RECORDS)
    issuer = IssuerProcess(install_issuer(workspace), workspace.root / "logs")
    issuer.start()
    try:
        build_index(workspace)  # over the issuer's tokens: [holder.issuer]
    finally:
        issuer.terminate()
    eligibility = issue(workspace)
    witness = WitnessProcess(install_witness(workspace), workspace.root / "logs")
    witness.start()  # before the holder: both sides submit each checkpoint from the start
    holder = HolderProcess(workspace.holder_config, workspace.root / "logs")
    try:
        holder.start()
        results = workspace.requester_dir / "results.csv"
        prepared = run_match(workspace, results, awaiting=True)
        approved = approve_job(workspace, str(prepared["job_id"]))
        match = run_match(workspace, results)
        truth = json.loads(workspace.truth.read_text())
        counts = compare_results(results, truth)
        eligibility["ineligible_tried"], eligibility["ineligible_matched"] = try_without_tokens(workspace)
        engine = BatchEngine()
        try:
            refusals = try_refusals(load_requester_config(workspace.requester_config), engine, workspace.officials_dir,
                                    DEMO_DUAL_CONTROL_RECORDS)
        finally:
            engine.close()
        submit_requester_checkpoint(workspace)  # the probes' sessions: no requester match run covers them
        serving = wait_until_cosigned(workspace.holder_dir, witness_key(workspace))  # the holder's background submission
    finally:
        try:
            holder_exit = holder.terminate()  # its shutdown checkpoint is submitted before it exits
        finally:
            witness_exit = witness.terminate()
    audit = check_audit(workspace)
    witnessed = {**review(workspace), "witness_exit_code": witness_exit, "match_run": match.get("witnesses"),
                 "holder_cosigned_while_serving": serving}
    return {
        "workdir": str(workspace.root),
        "holder_records": sum(1 for _ in workspace.records.open(encoding="utf-8")) - 1,
        "queries": len(truth),
        **counts,
        "job_id": match["job_id"],
        "approval": {"sessions": len(approved["sessions"]), "elements": approved["elements"],
                     "dual_control_records": DEMO_DUAL_CONTROL_RECORDS, "digest": approved["digest"],
                     "officials": ["alice.key", "bob.key"]},
        "results": str(results),
        "eligibility": eligibility,
        "refusals": {reason: refusals[reason] for reason in LEGAL_REFUSALS},
        "other_refusals": {reason: refusals[reason] for reason in OTHER_REFUSALS},
        "holder_exit_code": holder_exit,
        "audit": audit,
        "witness": witnessed,
        "seconds": round(time.monotonic() - started, 2),
    }


def check_audit(workspace: Workspace) -> dict[str, str]:
    """What a reviewer would run on the two logs: verify each, then reconcile the pair."""
    holder = verify_log(workspace.holder_dir)
    requester = verify_log(workspace.requester_dir)
    paired = reconcile(workspace.holder_dir, workspace.requester_dir)
    return {
        "holder": "ok" if holder.ok else f"failed: {holder.error}",
        "requester": "ok" if requester.ok else f"failed: {requester.error}",
        "reconcile": "ok" if paired.ok else "failed: " + "; ".join(paired.mismatches[:3]),
    }


def demo_ok(summary: dict[str, object]) -> bool:
    refusals = summary["refusals"]
    others = summary["other_refusals"]
    audit = summary["audit"]
    assert isinstance(refusals, dict) and isinstance(others, dict) and isinstance(audit, dict)
    return (
        summary["matches"] == summary["expected_matches"]
        and summary["false_matches"] == 0
        and summary["missed_matches"] == 0
        and summary["ineligible_answered"] == 0
        and isinstance(summary["eligibility"], dict) and summary["eligibility"]["ineligible_matched"] == 0
        and set(refusals) == set(LEGAL_REFUSALS)
        and all(status != "OK" for status in (*refusals.values(), *others.values()))
        and all(state == "ok" for state in audit.values())
        and witnessed_ok(summary["witness"])
    )


def witnessed_ok(witness: object) -> bool:
    """Both logs cosigned up to their latest checkpoint, verified against the witness, reconciled."""
    assert isinstance(witness, dict)
    return (all(witness[check] == "ok" for check in ("verify_holder", "verify_requester", "reconcile"))
            and witness["holder_cosigned_size"] > 0 and witness["requester_cosigned_size"] > 0
            and witness["holder_cosigned_while_serving"] > 0
            and witness["witness_exit_code"] == 0)
