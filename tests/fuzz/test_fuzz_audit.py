"""Audit logs and checkpoints as a reviewer or a reopening daemon reads them, after tampering.

``verify_log`` and ``reconcile`` report every problem in their result, so they must never
raise; ``render_report`` draws even a log that failed verification; ``AuditLog.open``
either opens or raises ``AuditError`` without touching the files; the checkpoint and
verifier-key parsers raise only their own error types.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz_support import assert_clear, heavy, snapshot
from helpers.audit_pairs import HOLDER_ORIGIN, REQUESTER_ORIGIN, write_pair
from hypothesis import given
from hypothesis import strategies as st

from blindmatch.audit import AuditError, AuditLog, load_entries, reconcile, verify_log
from blindmatch.audit.checkpoint import CheckpointError, parse_checkpoint, split_notes
from blindmatch.audit.events import canonical_json
from blindmatch.audit.keys import AuditKeyError, parse_verifier_key
from blindmatch.audit.log import CHECKPOINTS_NAME, LOG_NAME, PUB_NAME, read_verifier_key, scan_lines
from blindmatch.audit.report import render_report

pytestmark = pytest.mark.fuzz


@pytest.fixture(scope="module")
def pristine() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        write_pair(Path(tmp))
        yield Path(tmp)


def _copy(pristine: Path, target: Path) -> tuple[Path, Path]:
    shutil.copytree(pristine, target / "pair")
    return target / "pair" / "holder", target / "pair" / "requester"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def tampered_line(draw: st.DrawFn, line: bytes) -> bytes:
    """One log line edited as a tamperer would: a value replaced or removed, or raw bytes changed."""
    action = draw(st.sampled_from(["value", "drop", "bytes", "nest", "raw", "surrogate"]))
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):
        entry = None
    if not isinstance(entry, dict) or not entry:
        action = draw(st.sampled_from(["bytes", "raw"])) if line else "raw"
    if action == "value":
        entry[draw(st.sampled_from(sorted(entry)))] = draw(JSON)
        return canonical_json(entry)
    if action == "drop":
        del entry[draw(st.sampled_from(sorted(entry)))]
        return canonical_json(entry)
    if action == "nest":  # deeply nested JSON: a parser must not recurse without bound
        depth = draw(st.sampled_from([10, 1000, 100_000]))
        return b"[" * depth + b"]" * depth
    if action == "raw":
        return draw(st.binary(max_size=80)).replace(b"\n", b"")
    if action == "surrogate":  # a JSON escape that decodes to a str no UTF-8 writer can encode
        return line.replace(b'":"', b'":"\\ud800', 1)
    out = bytearray(line)
    i = draw(st.integers(0, len(out) - 1))
    out[i] = draw(st.integers(0, 255).filter(lambda b: b != 10))
    return bytes(out)


@st.composite
def tampered_log(draw: st.DrawFn, data: bytes) -> bytes:
    lines = data.split(b"\n")[:-1]
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["edit", "edit", "delete", "swap", "truncate", "append"]))
        i = draw(st.integers(0, len(lines) - 1))
        if action == "edit":
            lines[i] = draw(tampered_line(lines[i]))
        elif action == "delete":
            del lines[i]
        elif action == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "append":
            lines.append(draw(tampered_line(lines[i])))
        else:
            return b"\n".join(lines)[: draw(st.integers(0, len(data)))]
        if not lines:
            return b""
    return b"\n".join(lines) + b"\n"


@st.composite
def tampered_checkpoints(draw: st.DrawFn, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["flip", "cut", "insert"]))
        i = draw(st.integers(0, max(0, len(out) - 1)))
        if action == "flip" and out:
            out[i] = draw(st.integers(0, 255))
        elif action == "cut":
            del out[i : i + draw(st.integers(1, 200))]
        else:
            out[i:i] = draw(st.sampled_from([b"\n", b"\n\n", "\u2014 x y\n".encode(), b"0\n", b"\xff"]))
    return bytes(out)


def _tamper(data: st.DataObject, audit_dir: Path) -> None:
    what = data.draw(st.sampled_from(["log", "checkpoints", "both", "pub"]))
    log, cps = audit_dir / LOG_NAME, audit_dir / CHECKPOINTS_NAME
    if what in ("log", "both"):
        log.write_bytes(data.draw(tampered_log(log.read_bytes())))
    if what in ("checkpoints", "both"):
        cps.write_bytes(data.draw(tampered_checkpoints(cps.read_bytes())))
    if what == "pub":
        (audit_dir / PUB_NAME).write_bytes(data.draw(st.binary(max_size=120)))


@heavy()
@given(st.data())
def test_verify_reports_tampering_in_its_result(pristine: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        holder, _ = _copy(pristine, Path(tmp))
        _tamper(data, holder / "audit")
        before = snapshot(holder)
        result = verify_log(holder)
        assert result.ok or (result.error or "").strip()
        html = render_report(holder)
        assert html.startswith("<!DOCTYPE html>")
        html.encode("utf-8")  # write_report writes UTF-8: a tampered entry must not stop it
        for entry in load_entries(holder):
            canonical_json(entry)  # what 'blindmatch audit show --json' prints
        assert ("Verification FAILED" in html) == (not result.ok)
        assert snapshot(holder) == before, "verification or the report changed the log"


@heavy()
@given(st.data())
def test_reconcile_reports_tampering_in_its_result(pristine: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        holder, requester = _copy(pristine, Path(tmp))
        _tamper(data, data.draw(st.sampled_from([holder, requester])) / "audit")
        result = reconcile(holder, requester)
        assert result.ok == (not result.mismatches)
        assert all(m.strip() for m in result.mismatches)


@heavy()
@given(st.data())
def test_reopening_a_tampered_log_opens_or_fails_cleanly(pristine: Path, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        holder, _ = _copy(pristine, Path(tmp))
        audit_dir = holder / "audit"
        _tamper(data, audit_dir)
        before = snapshot(holder)
        try:
            origin = read_verifier_key(audit_dir)[0]
        except AuditKeyError:
            origin = HOLDER_ORIGIN
        try:
            log = AuditLog.open(holder, origin)
        except (AuditError, AuditKeyError) as exc:
            assert_clear(exc)
            assert snapshot(holder) == before, "a refused open changed the log"
            return
        log.close()


@given(st.binary(max_size=2000))
def test_scan_lines_of_random_bytes(data: bytes) -> None:
    try:
        lines, end, _torn = scan_lines(data, 0)
    except AuditError as exc:
        assert_clear(exc, LOG_NAME)
        return
    assert end <= len(data) and len(lines) <= data.count(b"\n")


@given(st.text(max_size=400), st.sampled_from([HOLDER_ORIGIN, REQUESTER_ORIGIN, ""]), st.binary(max_size=40))
def test_parse_checkpoint_of_random_text(note: str, name: str, public_key: bytes) -> None:
    try:
        parse_checkpoint(note, name, public_key)
    except CheckpointError as exc:
        assert_clear(exc)
        return
    pytest.fail("a random note verified")


@given(st.data())
def test_parse_checkpoint_of_mutated_notes(pristine: Path, data: st.DataObject) -> None:
    raw = (pristine / "holder" / "audit" / CHECKPOINTS_NAME).read_bytes()
    origin, key = read_verifier_key(pristine / "holder" / "audit")
    notes, _ = split_notes(raw)
    note = data.draw(st.sampled_from(notes))
    mutated = data.draw(tampered_checkpoints(note.encode())).decode("utf-8", "replace")
    try:
        cp = parse_checkpoint(mutated, origin, key)
    except CheckpointError as exc:
        assert_clear(exc)
        return
    assert mutated.startswith(cp.body() + "\n"), "a checkpoint verified over a body it was not signed for"


@given(st.binary(max_size=2000))
def test_split_notes_of_random_bytes(data: bytes) -> None:
    notes, end = split_notes(data)
    assert end <= len(data)
    assert all(isinstance(n, str) for n in notes)


def test_split_notes_and_repair_scan_are_fast_on_a_large_torn_file(tmp_path: Path) -> None:
    """A checkpoints file of many lines that never form a note is a torn tail, cut in linear time.

    Regression: the check that no complete note follows the tail was a regex search whose
    note body could start at any byte, rescanning every later line from each: hours here.
    """
    data = b"a\n" * 200_000
    started = time.monotonic()
    assert split_notes(data) == ([], 0)
    holder = tmp_path / "holder"
    AuditLog.open(holder, HOLDER_ORIGIN).close()
    (holder / "audit" / CHECKPOINTS_NAME).write_bytes(data)
    AuditLog.open(holder, HOLDER_ORIGIN).close()
    assert time.monotonic() - started < 5
    assert [p.read_bytes() for p in (holder / "audit").glob("torn-checkpoints-*.bin")] == [data]
    assert verify_log(holder).ok


@given(st.text(max_size=200))
def test_parse_verifier_key_of_random_text(text: str) -> None:
    try:
        name, key = parse_verifier_key(text)
    except AuditKeyError as exc:
        assert_clear(exc)
        return
    assert len(key) == 32 and "+" not in name


def test_an_entry_with_a_lone_surrogate_can_be_shown_and_reported(tmp_path: Path) -> None:
    """Regression: 'blindmatch audit show' and write_report died with UnicodeEncodeError."""
    AuditLog.open(tmp_path, HOLDER_ORIGIN).close()
    log = tmp_path / "audit" / LOG_NAME
    log.write_bytes(log.read_bytes() + b'{"event":"session_refused","index":1,"peer":"\\ud800x"}\n')
    (entry,) = [e for e in load_entries(tmp_path) if e.get("index") == 1]
    assert entry["peer"] == "\\ud800x"
    assert "\\ud800x" in render_report(tmp_path)
    assert not verify_log(tmp_path).ok
