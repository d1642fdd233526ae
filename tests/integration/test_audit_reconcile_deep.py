"""Deep reconciliation: a field falsified (and re-signed) in one log is reported with its session and name."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers.audit_pairs import write_pair

from blindmatch.audit import AuditLog
from blindmatch.audit.log import KEY_NAME, PUB_NAME, read_verifier_key
from blindmatch.audit.reconcile import reconcile

_ENVELOPE = ("event", "index", "sig", "time")


def resign(side: Path, edit: dict[str, Any], event: str) -> str:
    """What an operator with the audit key can do: change ``edit`` in the first ``event`` entry that
    has those keys, re-sign every entry and checkpoint. Returns the session id changed."""
    lines = [json.loads(line) for line in (side / "audit" / "log.jsonl").read_text().splitlines()]
    target = next(e for e in lines if e["event"] == event and "session_id" in e)
    target.update(edit)
    origin, _ = read_verifier_key(side / "audit")
    scratch = side.parent / f"rewrite-{side.name}"
    (scratch / "audit").mkdir(parents=True, mode=0o700)
    for name in (KEY_NAME, PUB_NAME):
        shutil.copy2(side / "audit" / name, scratch / "audit" / name)
    with AuditLog.open(scratch, origin) as fake:
        for entry in lines:
            fake.append(entry["event"], **{k: v for k, v in entry.items() if k not in _ENVELOPE})
    for name in ("log.jsonl", "checkpoints"):
        os.replace(scratch / "audit" / name, side / "audit" / name)
    shutil.rmtree(scratch)
    return str(target["session_id"])


CASES = [
    ("requester", "session_opened", {"official": "mallory@benefits.example"}, "official"),
    ("requester", "session_opened", {"records": 2}, "records"),
    ("requester", "session_opened", {"legal_basis": "Some other act s. 1"}, "legal_basis"),
    ("holder", "session_opened", {"official": "mallory@benefits.example"}, "official"),
    ("holder", "session_opened", {"legal_basis": "Some other act s. 1"}, "legal_basis"),
    ("holder", "budget_debited", {"records": 2}, "budget debit records"),
]


@pytest.mark.parametrize(("side", "event", "edit", "field"), CASES)
def test_falsified_field_is_reported(tmp_path: Path, side: str, event: str, edit: dict[str, Any], field: str) -> None:
    holder, requester = write_pair(tmp_path)
    assert reconcile(holder, requester).ok
    sid = resign(holder if side == "holder" else requester, edit, event)
    result = reconcile(holder, requester)
    assert not result.ok
    assert any(m.startswith(f"session {sid}: {field}") for m in result.mismatches), result.mismatches
