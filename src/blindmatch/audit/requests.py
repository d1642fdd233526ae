"""Re-verifying the signed session requests an audit log keeps (SPEC 10.2.1, ``session_opened``).

Both daemons record each session's request in full: its canonical encoding
(``request``), every signature of its envelope (``signatures``) and the public key that
made each one (``signer_keys``). A reviewer re-checks, from the log alone, that the
encoding is the one hashed in ``request_sha256``, that it says what the entry says, and
that every signature verifies (strict Ed25519) under its recorded key. Given the
holder's policy file(s) in force, the reviewer also checks that each recorded key was
the key of an official of the requesting organisation whose mandate covered the time
the request was issued, and that the official the request names signed it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from blindmatch.crypto.ed25519 import WeakPublicKeyError
from blindmatch.policy.officials import Policy
from blindmatch.policy.request import SIGNATURE_BYTES, RequestFormatError, SessionRequest, verify_request_signature

_KEY_BYTES = 32


@dataclass(frozen=True)
class Approval:
    """Who approved one session, as re-verified from the log (names only when a policy says so)."""

    session_id: str
    official: str
    signer_keys: tuple[bytes, ...]
    signers: tuple[str, ...]  # official names from the policy; empty without a policy


def _split(text: str, size: int) -> list[bytes]:
    raw = bytes.fromhex(text)
    return [raw[i : i + size] for i in range(0, len(raw), size)]


def _signers(request: SessionRequest, keys: Sequence[bytes], policies: Sequence[Policy]) -> tuple[list[str], list[str]]:
    """Names of the officials behind ``keys`` in any policy given, and the problems found."""
    names, problems = [], []
    for n, key in enumerate(keys, start=1):
        holders = [o for p in policies for o in p.officials(request.organisation) if o.public_key == key]
        valid = [o for o in holders if o.valid_from <= request.issued_at <= o.valid_until]
        if not holders:
            problems.append(f"signature {n}: key {key.hex()[:16]}… is no official of {request.organisation!r} in the policy")
        elif not valid:
            problems.append(f"signature {n}: official {holders[0].name!r} had no mandate when the request was issued")
        else:
            names.append(valid[0].name)
    if policies and not problems and request.official not in names:
        problems.append(f"the named official {request.official!r} did not sign")
    return names, problems


def check_entry(entry: dict[str, Any], policies: Sequence[Policy] = ()) -> tuple[Approval | None, list[str]]:
    """Re-verify one ``session_opened`` entry; returns who approved and the problems found."""
    sid = str(entry.get("session_id"))
    if "request" not in entry:
        return None, []  # written by a version that kept only the hash
    problems: list[str] = []
    encoded = bytes.fromhex(entry["request"])
    if hashlib.sha256(encoded).hexdigest() != entry.get("request_sha256"):
        problems.append("request does not hash to request_sha256")
    try:
        request = SessionRequest.decode(encoded)
    except RequestFormatError as exc:
        return None, [f"session {sid}: the recorded request does not decode: {exc}"]
    said = {"session_id": request.session_id.hex(), "official": request.official, "mode": request.mode,
            "records": request.record_count, "held_back": request.held_back, "legal_basis": request.legal_basis}
    problems += [f"{field} differs from the signed request" for field, value in said.items() if entry.get(field) != value]
    signatures = _split(entry.get("signatures", ""), SIGNATURE_BYTES)
    keys = _split(entry.get("signer_keys", ""), _KEY_BYTES)
    if not signatures or len(signatures) != len(keys):
        problems.append(f"{len(signatures)} signatures but {len(keys)} signer keys")
    for n, (signature, key) in enumerate(zip(signatures, keys, strict=False), start=1):
        try:
            valid = verify_request_signature(request, signature, key)
        except WeakPublicKeyError:
            valid = False
        if not valid:
            problems.append(f"signature {n} does not verify under its recorded key")
    names, policy_problems = _signers(request, keys, policies) if policies else ([], [])
    problems += policy_problems
    approval = Approval(sid, request.official, tuple(keys), tuple(names))
    return approval, [f"session {sid}: {p}" for p in problems]


@dataclass(frozen=True)
class RequestReview:
    """Outcome of :func:`check_requests`: verified approvals, problems and warnings.

    A problem in a session the holder refused (the requester logs what it sent before
    the holder answers) is a warning: such a request was never honoured.
    """

    approvals: list[Approval]
    problems: list[str]
    warnings: list[str]


def check_requests(entries: Sequence[dict[str, Any]], policies: Sequence[Policy] = ()) -> RequestReview:
    """Every kept request of a log: the approvals that verified, and every problem."""
    refused = {e.get("session_id") for e in entries if e.get("event") == "session_refused"}
    review = RequestReview([], [], [])
    for entry in entries:
        if entry.get("event") != "session_opened":
            continue
        approval, found = check_entry(entry, policies)
        (review.warnings if entry.get("session_id") in refused else review.problems).extend(found)
        if approval is not None and not found:
            review.approvals.append(approval)
    return review
