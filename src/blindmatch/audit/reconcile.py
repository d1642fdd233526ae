"""Cross-check the holder's and the requester's logs against each other.

Each log alone cannot prove it is complete: an operator could drop a whole
session together with the checkpoints after it. The peer's log is the
witness. Every session either side knows about must appear on both sides, and
for closed sessions both must record the same transcript hash, element count
and per-batch counts and message hashes, with each side holding the other's
valid transcript signature made with the audit key that the other's
``audit.pub`` publishes.

Each side can rewrite and re-sign its own log, so both logs verifying proves little
on its own: every checkpoint one side handed the other in a session (SPEC.md 10.4.1,
``audit/peer-checkpoints``) must still be consistent with the log it came from.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blindmatch.audit.key_rotation import KeyChain, load_key_chain
from blindmatch.audit.keys import verify_transcript_signature
from blindmatch.audit.log import find_audit_dir
from blindmatch.audit.peer_checkpoints import check_handed_over
from blindmatch.audit.verify import load_entries, verify_log

_SESSION_EVENTS = ("session_opened", "session_refused", "session_failed", "session_closed", "budget_debited")


@dataclass(frozen=True)
class ReconcileResult:
    """``ok`` iff ``mismatches`` is empty; ``sessions`` counts sessions seen on both sides;
    ``peer_checkpoints`` counts the exchanged checkpoints checked (holder's stored, requester's stored)."""

    ok: bool
    mismatches: list[str] = field(default_factory=list)
    sessions: int = 0
    peer_checkpoints: tuple[int, int] = (0, 0)


@dataclass
class _Side:
    name: str
    chain: KeyChain  # its audit keys: a rotated log signed earlier sessions with a retired key
    events: dict[str, dict[str, dict[str, Any]]]  # session_id -> event -> entry
    batches: dict[str, dict[int, tuple[int, str, str]]]  # session_id -> seq -> (count, hashes)
    summaries: list[dict[str, Any]] = field(default_factory=list)  # refusals_summarised entries


def _load(name: str, directory: Path, batch_event: str) -> _Side:
    chain = load_key_chain(find_audit_dir(directory))
    events: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    batches: dict[str, dict[int, tuple[int, str, str]]] = defaultdict(dict)
    summaries: list[dict[str, Any]] = []
    for entry in load_entries(directory):
        event = entry.get("event")
        if event == "refusals_summarised":
            summaries.append({**entry, "reasons": dict(entry["reasons"])})
        elif event in _SESSION_EVENTS:
            events[entry["session_id"]][event] = entry
        elif event == batch_event:
            batches[entry["session_id"]][entry["seq"]] = (
                entry["count"],
                entry["blinded_sha256"],
                entry["evaluated_sha256"],
            )
    return _Side(name, chain, events, batches, summaries)


def _counted_by_holder(sid: str, requester: _Side, holder: _Side) -> bool:
    """Whether a session only the requester logged is a refusal the holder counted in a summary.

    The holder logs unverified refusals only as counts (SPEC.md 10.6): the requester's
    refusal is accounted for if a summary of the same reason covers its time; each
    counted refusal accounts for one session only.
    """
    events = requester.events[sid]
    refused = events.get("session_refused")
    if refused is None or set(events) - {"session_opened", "session_refused"}:
        return False
    for summary in holder.summaries:
        left = summary["reasons"].get(refused["reason"], 0)
        if left and summary["since"] <= refused["time"] <= summary["time"]:
            summary["reasons"][refused["reason"]] = left - 1
            return True
    return False


# What both sides must have recorded identically of a session's signed request (SPEC.md 10.8).
SIGNED_REQUEST_FIELDS = ("request_sha256", "request_signature", "official", "mode", "records", "held_back",
                         "legal_basis")


def compare_signed_requests(sid: str, holder: dict[str, Any], requester: dict[str, Any], out: list[str]) -> None:
    """The two ``session_opened`` entries: the same request, signed by the same official, field by field."""
    for key in SIGNED_REQUEST_FIELDS:
        if holder.get(key) != requester.get(key):
            out.append(f"session {sid}: {key} differs (holder {holder.get(key)!r}, requester {requester.get(key)!r})")


def _compare_debit(sid: str, h: dict[str, dict[str, Any]], out: list[str]) -> None:
    """The holder's debit must be for the official and record count of the request it granted."""
    opened, debit = h.get("session_opened"), h.get("budget_debited")
    if opened is None or debit is None:
        if (opened is None) != (debit is None):
            out.append(f"session {sid}: the holder log has {'budget_debited' if debit else 'session_opened'} "
                       "without the other")
        return
    for key, debit_key in (("official", "official"), ("records", "records"), ("peer", "organisation")):
        if opened[key] != debit[debit_key]:
            out.append(f"session {sid}: budget debit {debit_key} differs from the granted request "
                       f"({debit[debit_key]!r}, request {opened[key]!r})")


def _check_closed(sid: str, mine: _Side, theirs: _Side, out: list[str]) -> None:
    """Check ``mine``'s record of the peer's signature for session ``sid``.

    Each signature is by the key its signer had in force when it logged ``session_closed``.
    """
    closed = mine.events[sid]["session_closed"]
    their_key = theirs.chain.key_for_entry(theirs.events[sid]["session_closed"]["index"])
    if bytes.fromhex(closed["peer_audit_key"]) != their_key:
        out.append(f"session {sid}: {mine.name} recorded a peer audit key that is not the {theirs.name}'s audit key "
                   "at that session (audit.pub, or retired.pub before a rotation)")
    elif not verify_transcript_signature(
        their_key,
        bytes.fromhex(sid),
        bytes.fromhex(closed["transcript_hash"]),
        bytes.fromhex(closed["peer_signature"]),
    ):
        out.append(f"session {sid}: {theirs.name} transcript signature stored by the {mine.name} does not verify")
    if not verify_transcript_signature(
        mine.chain.key_for_entry(closed["index"]),
        bytes.fromhex(sid),
        bytes.fromhex(closed["transcript_hash"]),
        bytes.fromhex(closed["own_signature"]),
    ):
        out.append(f"session {sid}: {mine.name}'s own transcript signature does not verify")


def _compare(sid: str, holder: _Side, requester: _Side, out: list[str]) -> None:
    h, r = holder.events[sid], requester.events[sid]
    h_closed, r_closed = "session_closed" in h, "session_closed" in r
    if h_closed != r_closed:
        side = "holder" if h_closed else "requester"
        out.append(f"session {sid}: closed in the {side} log only")
        return
    if "session_opened" in h and "session_opened" in r:
        compare_signed_requests(sid, h["session_opened"], r["session_opened"], out)
    _compare_debit(sid, h, out)
    if ("session_refused" in h) != ("session_refused" in r) or (
            "session_refused" in h and h["session_refused"]["reason"] != r["session_refused"]["reason"]):
        out.append(f"session {sid}: outcome differs (holder {sorted(h)}, requester {sorted(r)})")
    if not h_closed:
        return
    hc, rc = h["session_closed"], r["session_closed"]
    for key in ("transcript_hash", "elements"):
        if hc[key] != rc[key]:
            out.append(f"session {sid}: {key} differs (holder {hc[key]}, requester {rc[key]})")
    if holder.batches[sid] != requester.batches[sid]:
        out.append(f"session {sid}: batch counts or message hashes differ between holder and requester")
    _check_closed(sid, holder, requester, out)
    _check_closed(sid, requester, holder, out)


def reconcile(holder_dir: Path, requester_dir: Path) -> ReconcileResult:
    """Check that both logs verify and describe the same sessions identically."""
    mismatches: list[str] = []
    for name, directory in (("holder", holder_dir), ("requester", requester_dir)):
        result = verify_log(Path(directory))
        if not result.ok:
            mismatches.append(f"{name} log does not verify: {result.error}")
    if mismatches:
        return ReconcileResult(False, mismatches)
    holder = _load("holder", Path(holder_dir), "batch_evaluated")
    requester = _load("requester", Path(requester_dir), "batch_received")
    if set(holder.chain.keys) & set(requester.chain.keys):
        return ReconcileResult(False, ["holder and requester use the same audit key"])
    both = sorted(set(holder.events) & set(requester.events))
    for sid in sorted(set(holder.events) ^ set(requester.events)):
        side = "holder" if sid in holder.events else "requester"
        if side == "requester" and _counted_by_holder(sid, requester, holder):
            continue
        mismatches.append(f"session {sid}: appears only in the {side} log")
    for sid in both:
        _compare(sid, holder, requester, mismatches)
    # The holder's file mixes the notes of all its requesters (SPEC.md 10.8).
    held, found_by_holder = check_handed_over("holder", Path(holder_dir), "requester", Path(requester_dir), mixed=True)
    kept, found_by_requester = check_handed_over("requester", Path(requester_dir), "holder", Path(holder_dir))
    mismatches += found_by_holder + found_by_requester
    return ReconcileResult(not mismatches, mismatches, len(both), (held, kept))
