"""``blindmatch demo --workdir DIR`` run twice on one workspace: the second run works and loses nothing.

The second run reuses the workspace: the holder rebuilds its index for the same issuer
epoch, and the issuer answers the same blinded batches again without counting them
(otherwise the holder would be over its allowance for the epoch); the requester's job
store knows every session of the first run, the probes' included. Both audit logs grow by
appending (the first run's entries stay, byte for byte, and still verify), and each
daemon's output of the first run is kept beside the second's.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from blindmatch.pilot.processes import blindmatch_command

pytestmark = pytest.mark.timeout(400)
COUNTS = ("holder_records", "queries", "expected_matches", "matches", "false_matches", "missed_matches",
          "ineligible_records", "ineligible_answered")


def _demo(workdir: Path) -> dict[str, object]:
    done = subprocess.run(blindmatch_command("demo", "--json", "--workdir", str(workdir)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def _issuer_used(workdir: Path) -> dict[str, int]:
    """The issuer's blind evaluations counted per holder, over every epoch it served."""
    used: dict[str, int] = {}
    for path in sorted((workdir / "issuer" / "state").glob("evaluations-*.json")):
        for organisation, count in json.loads(path.read_text())["used"].items():
            used[organisation] = used.get(organisation, 0) + count
    return used


def test_the_demo_runs_again_on_its_workspace_and_appends(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    first = _demo(workdir)
    logs = {side: (workdir / side / "audit" / "log.jsonl").read_bytes() for side in ("holder", "requester")}
    used = _issuer_used(workdir)
    outputs = {p.name: p.read_bytes() for p in (workdir / "logs").iterdir()}

    second = _demo(workdir)
    assert {key: second[key] for key in COUNTS} == {key: first[key] for key in COUNTS}
    assert second["eligibility"] == first["eligibility"] and second["audit"] == first["audit"]
    assert second["job_id"] != first["job_id"]
    for side, before in logs.items():
        after = (workdir / side / "audit" / "log.jsonl").read_bytes()
        assert len(after) > len(before) and after.startswith(before)  # appended, nothing rewritten
    # Built again for the same epoch, the index cost the holder's allowance nothing more
    # (a new month between the runs would be a new epoch with its own allowance).
    assert _issuer_used(workdir) == used or len(list((workdir / "issuer" / "state").glob("evaluations-*"))) > 1
    kept = {p.name: p.read_bytes() for p in (workdir / "logs").iterdir()}
    assert all(kept[name] == data for name, data in outputs.items())  # the first run's daemon output is kept
    assert {"holder-2.stderr", "issuer-2.stderr", "witness-2.stderr"} <= set(kept)
    witness = second["witness"]
    assert isinstance(witness, dict) and witness["verify_holder"] == witness["verify_requester"] == "ok"
