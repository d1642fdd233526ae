"""AuditLog: files and permissions, concurrency, torn-tail repair, kill -9."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from blindmatch.audit import AuditError, AuditLog, verify_log
from blindmatch.audit.keys import AuditKeyError

ORIGIN = "holder.example/audit"


def _started(log: AuditLog, n: int = 1) -> None:
    for _ in range(n):
        log.append("daemon_started", role="holder", version="0.1.0")


def _files(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "audit" / "log.jsonl", tmp_path / "audit" / "checkpoints"


def test_open_creates_private_directory_and_keys(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path / "holder", ORIGIN)
    audit = tmp_path / "holder" / "audit"
    assert stat.S_IMODE(audit.stat().st_mode) == 0o700
    assert stat.S_IMODE((audit / "audit.key").stat().st_mode) == 0o600
    assert (audit / "audit.pub").read_text().startswith(ORIGIN + "+")
    assert len(log.public_key) == 32
    log.close()
    again = AuditLog.open(tmp_path / "holder", ORIGIN)
    assert again.public_key == log.public_key
    again.close()


def test_entries_are_canonical_json_lines(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, ORIGIN)
    assert log.append("daemon_started", role="holder", version="0.1.0") == 0
    assert log.append("key_rotated", key_id="0011223344556677") == 1
    log.close()
    lines = _files(tmp_path)[0].read_bytes().split(b"\n")
    assert lines[-1] == b""
    entry = json.loads(lines[1])
    assert list(entry) == sorted(entry)
    assert entry["index"] == 1 and entry["event"] == "key_rotated" and entry["time"].endswith("Z")
    assert json.dumps(entry, sort_keys=True, separators=(",", ":")).encode() == lines[1]


def test_origin_and_key_file_checks(tmp_path: Path) -> None:
    AuditLog.open(tmp_path, ORIGIN).close()
    with pytest.raises(AuditKeyError, match="belongs to origin"):
        AuditLog.open(tmp_path, "other.example")
    os.chmod(tmp_path / "audit" / "audit.key", 0o644)
    with pytest.raises(AuditKeyError, match="chmod 600"):
        AuditLog.open(tmp_path, ORIGIN)
    with pytest.raises(ValueError, match="origin"):
        AuditLog.open(tmp_path / "x", "has space")


def test_closed_log_refuses_appends(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, ORIGIN)
    log.close()
    log.close()  # idempotent
    with pytest.raises(AuditError, match="closed"):
        _started(log)


def test_threads_and_two_writers_on_one_directory(tmp_path: Path) -> None:
    """Two AuditLog objects (as a CLI and a daemon would have) plus threads."""
    first, second = AuditLog.open(tmp_path, ORIGIN), AuditLog.open(tmp_path, ORIGIN)
    indices: list[int] = []

    def work(log: AuditLog) -> None:
        for i in range(25):
            indices.append(log.append("daemon_started", role="holder", version="0.1.0"))
            if i % 10 == 0:
                log.checkpoint()

    threads = [threading.Thread(target=work, args=(log,)) for log in (first, second, first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first.close()
    second.close()
    assert sorted(indices) == list(range(100))
    result = verify_log(tmp_path)
    assert result.ok, result.error
    assert result.size == 100 and result.unsigned_tail == 0


def test_torn_last_line_is_cut_saved_and_logged(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, ORIGIN)
    _started(log, 3)
    log.checkpoint()
    _started(log)
    log_file, _ = _files(tmp_path)
    intact = log_file.read_bytes()
    os.close(log._log_fd)  # simulate the process dying mid-write
    torn = b'{"event":"daemon_stopped","index":4,"ro'
    with log_file.open("ab") as handle:
        handle.write(torn)
    reopened = AuditLog.open(tmp_path, ORIGIN)
    assert log_file.read_bytes().startswith(intact)
    saved = list((tmp_path / "audit").glob("torn-log-*.bin"))
    assert [p.read_bytes() for p in saved] == [torn]
    last = json.loads(log_file.read_bytes().splitlines()[-1])
    assert last["event"] == "log_repaired" and last["index"] == 4 and last["dropped_bytes"] == len(torn)
    reopened.close()
    assert verify_log(tmp_path).ok


def test_complete_but_invalid_last_line_counts_as_torn(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, ORIGIN)
    _started(log, 2)
    log.close()
    log_file, _ = _files(tmp_path)
    with log_file.open("ab") as handle:
        handle.write(b"\x00\x00\x00\x00\n")
    reopened = AuditLog.open(tmp_path, ORIGIN)
    assert reopened.size == 3  # two entries + log_repaired
    reopened.close()
    assert verify_log(tmp_path).ok


def test_damage_below_the_latest_checkpoint_refuses_to_open(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, ORIGIN)
    _started(log, 4)
    log.close()
    log_file, _ = _files(tmp_path)
    data = log_file.read_bytes()
    log_file.write_bytes(data[:-10])  # the last checkpointed entry is torn
    with pytest.raises(AuditError, match="checkpoint covers 4"):
        AuditLog.open(tmp_path, ORIGIN)
    assert log_file.read_bytes() == data[:-10]  # nothing was cut
    assert not list((tmp_path / "audit").glob("torn-*"))


def test_altered_checkpointed_entry_refuses_to_open(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, ORIGIN)
    _started(log, 2)
    log.close()
    log_file, _ = _files(tmp_path)
    log_file.write_bytes(log_file.read_bytes().replace(b'"version":"0.1.0"', b'"version":"0.1.1"', 1))
    with pytest.raises(AuditError, match="does not match its latest checkpoint"):
        AuditLog.open(tmp_path, ORIGIN)


def test_torn_checkpoint_note_is_cut(tmp_path: Path) -> None:
    log = AuditLog.open(tmp_path, ORIGIN)
    _started(log)
    log.checkpoint()
    _started(log)
    cp = log.checkpoint()
    log.close()
    _, cp_file = _files(tmp_path)
    data = cp_file.read_bytes()
    cp_file.write_bytes(data[:-20])
    reopened = AuditLog.open(tmp_path, ORIGIN)
    assert list((tmp_path / "audit").glob("torn-checkpoints-*.bin"))
    reopened.close()
    result = verify_log(tmp_path)
    assert result.ok, result.error
    # Two notes survive the cut and close() adds one; the lost note covered nothing new.
    assert result.checkpoints == 3 and result.latest and result.latest.size == cp.size


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from blindmatch.audit import AuditLog

    log = AuditLog.open(Path(sys.argv[1]), "holder.example/audit")
    i = 0
    while True:
        log.append("batch_evaluated", session_id="ab" * 16, seq=i, count=i,
                   blinded_sha256="cd" * 32, evaluated_sha256="ef" * 32)
        i += 1
        if i % 7 == 0:
            cp = log.checkpoint()
            print(cp.size, flush=True)
    """
)


@pytest.mark.parametrize("delay", [0.35, 0.5, 0.65])
def test_kill_9_while_appending(tmp_path: Path, delay: float) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    first = process.stdout.readline()  # wait for the first checkpoint
    assert first.strip(), "writer did not start"
    time.sleep(delay)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    reported = [int(x) for x in (first + process.stdout.read()).split()]
    checkpointed = max(reported)

    log = AuditLog.open(tmp_path, ORIGIN)  # repairs a torn tail, if any
    assert log.size >= checkpointed
    result = verify_log(tmp_path)
    assert result.ok, result.error
    assert result.latest is not None and result.latest.size >= checkpointed
    log.close()
    result = verify_log(tmp_path)
    assert result.ok and result.unsigned_tail == 0, result.error
