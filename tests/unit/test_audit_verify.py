"""``verify_log`` detects every edit, deletion, reordering or insertion, and names it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers.audit_pairs import HOLDER_ORIGIN

from blindmatch.audit import verify_log
from blindmatch.audit.keys import format_verifier_key, raw_public_key

PERCENTS = [*list(range(0, 100, 3)), 99]
SIDES = ["holder", "requester"]


@pytest.fixture()
def logs(pristine: Path, tmp_path: Path) -> Path:
    shutil.copytree(pristine, tmp_path / "logs")
    return tmp_path / "logs"


def _log_file(logs: Path, side: str) -> Path:
    return logs / side / "audit" / "log.jsonl"


def test_pristine_logs_verify(logs: Path) -> None:
    for side in SIDES:
        result = verify_log(logs / side)
        assert result.ok, result.error
        assert result.latest is not None and result.latest.size == result.size
        assert verify_log(logs / side / "audit").ok  # the audit dir itself is accepted too


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("percent", PERCENTS)
def test_flipped_byte_is_detected_at_its_line(logs: Path, side: str, percent: int) -> None:
    path = _log_file(logs, side)
    data = bytearray(path.read_bytes())
    offset = len(data) * percent // 100
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))
    result = verify_log(logs / side)
    assert not result.ok
    line = data[:offset].count(b"\n") + 1
    assert f"line {line}" in str(result.error), result.error


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("percent", PERCENTS)
def test_deleted_line_is_detected(logs: Path, side: str, percent: int) -> None:
    path = _log_file(logs, side)
    lines = path.read_bytes().splitlines(keepends=True)
    victim = len(lines) * percent // 100
    del lines[victim]
    path.write_bytes(b"".join(lines))
    result = verify_log(logs / side)
    assert not result.ok
    if victim < len(lines):
        assert f"line {victim + 1}: index is {victim + 1}, expected {victim}" in str(result.error)
    else:
        assert "deleted" in str(result.error)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("percent", PERCENTS)
def test_swapped_lines_are_detected(logs: Path, side: str, percent: int) -> None:
    path = _log_file(logs, side)
    lines = path.read_bytes().splitlines(keepends=True)
    first = len(lines) * percent // 100
    second = (first + 1 + percent % 5) % len(lines)
    lines[first], lines[second] = lines[second], lines[first]
    path.write_bytes(b"".join(lines))
    result = verify_log(logs / side)
    assert not result.ok
    assert f"line {min(first, second) + 1}:" in str(result.error)


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("percent", PERCENTS)
def test_inserted_line_is_detected(logs: Path, side: str, percent: int) -> None:
    path = _log_file(logs, side)
    lines = path.read_bytes().splitlines(keepends=True)
    at = len(lines) * percent // 100
    lines.insert(at, lines[(at + 5) % len(lines)])  # a replayed, validly signed entry
    path.write_bytes(b"".join(lines))
    result = verify_log(logs / side)
    assert not result.ok
    assert f"line {at + 1}:" in str(result.error)


def test_reformatted_line_is_detected(logs: Path) -> None:
    path = _log_file(logs, "holder")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'","', b'", "', 1)
    path.write_bytes(b"".join(lines))
    assert "line 4: not in canonical form" in str(verify_log(logs / "holder").error)


def test_unencodable_line_is_reported_not_raised(logs: Path) -> None:
    path = _log_file(logs, "holder")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'{"event"', b'{"x":"\\ud800","event"', 1)  # a lone surrogate escape
    path.write_bytes(b"".join(lines))
    assert "line 3: not encodable" in str(verify_log(logs / "holder").error)


def test_entry_with_forged_plaintext_field_is_detected(logs: Path) -> None:
    path = _log_file(logs, "holder")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b'{"event"', b'{"birth_date":"1970-01-01","event"', 1)
    path.write_bytes(b"".join(lines))
    assert "not allowed" in str(verify_log(logs / "holder").error)


def test_torn_tail_is_reported_by_verify(logs: Path) -> None:
    path = _log_file(logs, "holder")
    path.write_bytes(path.read_bytes() + b'{"event":')
    result = verify_log(logs / "holder")
    assert not result.ok and "incomplete last line" in str(result.error)


@pytest.mark.parametrize("percent", PERCENTS)
def test_flipped_checkpoint_byte_is_detected(logs: Path, percent: int) -> None:
    path = logs / "holder" / "audit" / "checkpoints"
    data = bytearray(path.read_bytes())
    data[len(data) * percent // 100] ^= 0x01
    path.write_bytes(bytes(data))
    result = verify_log(logs / "holder")
    assert not result.ok and "checkpoints" in str(result.error)


def test_reordered_checkpoints_are_detected(logs: Path) -> None:
    path = logs / "holder" / "audit" / "checkpoints"
    blocks = path.read_text().split("\n\n")[:-1]  # body, sigs, body, sigs, ...
    notes = [blocks[i] + "\n\n" + blocks[i + 1] + "\n\n" for i in range(0, len(blocks), 2)]
    notes[1], notes[2] = notes[2], notes[1]
    path.write_text("".join(notes))
    assert "smaller than the previous" in str(verify_log(logs / "holder").error)


def test_replaced_audit_key_is_detected(logs: Path) -> None:
    other = Ed25519PrivateKey.generate()
    pub_file = logs / "holder" / "audit" / "audit.pub"
    genuine = pub_file.read_text()
    pub_file.write_text(format_verifier_key(HOLDER_ORIGIN, raw_public_key(other)) + "\n")
    assert "line 1 (entry 0): signature does not verify" in str(verify_log(logs / "holder").error)
    pub_file.write_text(genuine)
    pinned = raw_public_key(other)
    assert "pinned" in str(verify_log(logs / "holder", public_key=pinned).error)


def test_missing_log_is_an_error(tmp_path: Path) -> None:
    result = verify_log(tmp_path)
    assert not result.ok and "no audit log" in str(result.error)
