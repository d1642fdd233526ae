"""Writes audit.json: a short holder audit log (SPEC section 10) signed with a fixed key.

Every entry is a line of ``log.jsonl`` exactly as written (canonical JSON, section 10.2,
with its entry signature, section 10.3.2), then the RFC 9162 root over the lines, the
signed checkpoint (section 10.4), the verifier key line of ``audit.pub`` (section
10.3.1) and a transcript signature (section 10.3.3) over the session of session.json.
The generator writes the log to a temporary audit directory and verifies it there.

Run: .venv/bin/python protocol/test-vectors/generate_audit.py   (a test checks the file)
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.checkpoint import sign_checkpoint
from blindmatch.audit.events import canonical_json, entry_signing_message, validate_fields
from blindmatch.audit.keys import format_verifier_key, raw_public_key, sign_transcript
from blindmatch.audit.merkle import MerkleTree
from blindmatch.audit.verify import verify_log

HERE = Path(__file__).resolve().parent
SEED = bytes.fromhex("55" * 32)
ORIGIN = "holder/Example-Authority"
SESSION = json.loads((HERE / "session.json").read_text())
SID = SESSION["session_id"]


def _events() -> list[tuple[str, str, dict[str, Any]]]:
    evaluated = [m for m in SESSION["messages"] if m["type"] == "EvaluatedBatch"]
    blinded = [m for m in SESSION["messages"] if m["type"] == "BlindedBatch"]
    batches = [
        ("batch_evaluated", f"2026-12-01T12:00:0{1 + b['seq']}.000000Z",
         {"session_id": SID, "seq": b["seq"], "count": len(b["elements"]) // 64,
          "blinded_sha256": hashlib.sha256(bytes.fromhex(b["elements"])).hexdigest(),
          "evaluated_sha256": hashlib.sha256(bytes.fromhex(e["elements"])).hexdigest()})
        for b, e in zip(blinded, evaluated, strict=True)
    ]
    return [
        ("daemon_started", "2026-12-01T11:59:00.000000Z", {"role": "holder", "version": "1.0.0"}),
        ("session_opened", "2026-12-01T12:00:00.000000Z",
         {"session_id": SID, "peer": "Example County", "official": "Alice Clerk", "mode": "membership",
          "records": 3, "held_back": 0, "legal_basis": "Example Enforcement Act 2025 \u00a7 12(3)",
          "request_sha256": "00" * 32, "request_signature": "11" * 64, "role": "holder"}),
        ("budget_debited", "2026-12-01T12:00:00.500000Z",
         {"session_id": SID, "organisation": "Example County", "official": "Alice Clerk", "records": 3,
          "day_used": 3, "day_limit": 20000, "month_used": 3, "month_limit": 200000, "nonce": "22" * 16}),
        *batches,
        ("session_closed", "2026-12-01T12:00:05.000000Z",
         {"session_id": SID, "peer": "Example County", "elements": 3, "transcript_hash": SESSION["transcript_hash"],
          "own_signature": "", "peer_signature": "33" * 64, "peer_audit_key": "44" * 32}),
        ("session_refused", "2026-12-01T12:01:00.000000Z",
         {"session_id": "ff" * 16, "peer": "O'Brien & Sons, Inc.", "official": "", "reason": "unsigned",
          "status": "UNAUTHENTICATED"}),
    ]


def build() -> dict[str, Any]:
    key = Ed25519PrivateKey.from_private_bytes(SEED)
    public = raw_public_key(key)
    own = sign_transcript(key, bytes.fromhex(SID), bytes.fromhex(SESSION["transcript_hash"]))
    lines: list[str] = []
    tree = MerkleTree()
    for index, (event, time, fields) in enumerate(_events()):
        if event == "session_closed":
            fields = {**fields, "own_signature": own.hex()}
        validate_fields(event, fields)
        entry: dict[str, Any] = {"index": index, "time": time, "event": event, **fields}
        entry["sig"] = key.sign(entry_signing_message(ORIGIN, entry)).hex()
        line = canonical_json(entry)
        tree.append(line)
        lines.append(line.decode())
    checkpoint = sign_checkpoint(key, ORIGIN, tree.size, tree.root(), "2026-12-01T12:01:30.000000Z")
    verifier = format_verifier_key(ORIGIN, public)
    with tempfile.TemporaryDirectory() as tmp:
        audit = Path(tmp)
        (audit / "log.jsonl").write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        (audit / "checkpoints").write_text(checkpoint.note + "\n", encoding="utf-8")
        (audit / "audit.pub").write_text(verifier + "\n", encoding="utf-8")
        result = verify_log(audit, public_key=public)
        assert result.ok and result.size == len(lines) and result.unsigned_tail == 0, result.error
    return {
        "description": "A holder audit log of one session and one refusal (SPEC section 10): log.jsonl lines as written, "
                       "each with its entry signature; the RFC 9162 root over them; the signed checkpoint; audit.pub; "
                       "the holder's transcript signature over the session of session.json",
        "audit_seed": SEED.hex(),
        "origin": ORIGIN,
        "audit_public_key": public.hex(),
        "audit_pub": verifier + "\n",
        "lines": lines,
        "first_entry_signed_message": entry_signing_message(ORIGIN, json.loads(lines[0])).decode(),
        "root": tree.root().hex(),
        "checkpoint": checkpoint.note,
        "transcript": {"session_id": SID, "transcript_hash": SESSION["transcript_hash"],
                       "signed_message": (b"blindmatch audit transcript v1\x00" + (16).to_bytes(2, "big")
                                          + bytes.fromhex(SID) + bytes.fromhex(SESSION["transcript_hash"])).hex(),
                       "signature": own.hex()},
    }


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    (HERE / "audit.json").write_text(render(build()), encoding="utf-8")
