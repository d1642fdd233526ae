"""The holder never sees requester plaintext or unkeyed hashes of it; the requester's logs hold none.

Queries carry unique marker strings in names and addresses. After a real match (holder
daemon subprocess + requester daemon, and again against an in-process holder whose
servicer records every request it receives), no marker in any case, nor the SHA-256 or
SHA-512 (hex or raw) of any match key or normalised field, may appear in the holder's
files, its stdout/stderr or log records, or the bytes it received; nor may a marker
appear in the requester's audit log or daemon stderr.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import string
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from blindmatch.holder import service as holder_service
from blindmatch.holder.config import load_holder_config
from blindmatch.normalize import default_schema
from blindmatch.pilot.processes import HolderProcess, blindmatch_command, build_index
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import load_requester_config
from blindmatch.vocabulary import ExitCode, JobState
from tests.helpers.officials import approve, match_approved, released_job_ends

pytestmark = pytest.mark.timeout(180)


def _marker() -> str:
    return "Qx" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(10))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, list[str], list[bytes]]:
    ws = create_workspace(tmp_path_factory.mktemp("privacy"), holder_records=500, queries=20)
    build_index(ws)
    markers: list[str] = []
    rows = []
    for n in range(6):
        given, surname, street = _marker(), _marker(), _marker()
        markers += [given, surname, street]
        date = "2024-03-04" if n else "2999-01-01"  # one held back
        rows.append({"name": f"{given} {surname}", "address": f"{n + 10} {street} St Apt {n + 1}, Boston, MA 02108",
                     "order_date": date})
    with ws.queries.open("a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(f'"{row["name"]}","{row["address"]}",{row["order_date"]}\n')
    schema = default_schema()
    secrets_derived: list[bytes] = []
    for row in rows:
        values: list[bytes] = [key for _, key in schema.match_keys(row, "requester")]
        for views in schema.normalize_record(row).values():
            for view in views.values():  # a set view (one-deletion forms) is a tuple of strings
                values += [v.encode() for v in (view if isinstance(view, tuple) else (view,)) if v]
        for value in values:
            for algorithm in (hashlib.sha256, hashlib.sha512):
                digest = algorithm(value).digest()
                secrets_derived += [digest, digest.hex().encode(), digest.hex().upper().encode()]
    return ws, markers, secrets_derived


def _assert_clean(name: str, data: bytes, markers: list[str], derived: list[bytes]) -> None:
    lowered = data.lower()
    for marker in markers:
        assert marker.lower().encode() not in lowered, f"marker found in {name}"
    for value in derived:
        assert value not in data, f"hash of requester data found in {name}"


def _files(directory: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.is_socket():
            yield str(path), path.read_bytes()


def test_holder_and_requester_logs_see_no_requester_plaintext(
    setup: tuple[Workspace, list[str], list[bytes]], tmp_path: Path
) -> None:
    ws, markers, derived = setup
    config = load_requester_config(ws.requester_config)
    holder = HolderProcess(ws.holder_config, tmp_path / "holder-logs")
    holder.start()
    stderr = (tmp_path / "requester.stderr").open("wb")
    daemon = subprocess.Popen(blindmatch_command("requester", "serve", "--config", str(ws.requester_config)),
                              stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        while not config.socket_path.exists():
            assert daemon.poll() is None
            time.sleep(0.05)
        out = tmp_path / "results.csv"
        done = subprocess.run(blindmatch_command("requester", "match", str(ws.queries), "--config", str(ws.requester_config),
                                                 "--out", str(out), "--json", "--no-progress"), capture_output=True, text=True)
        assert done.returncode == ExitCode.AWAITING_APPROVAL, done.stderr
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        assert summary["via"] == "daemon"
        approve(ws, summary["job_id"])
        job = released_job_ends(ws, summary["job_id"])
        assert job.state == JobState.SUCCEEDED, job.error
    finally:
        daemon.terminate()
        daemon.wait(30)
        holder.terminate()
    results = out.read_text(encoding="utf-8")
    assert all(m in results for m in markers)  # the markers really were in the job
    for name, data in [*_files(ws.holder_dir), *_files(holder.log_dir)]:
        _assert_clean(name, data, markers, derived)
    for name, data in [*_files(ws.requester_dir / "audit"), ("requester daemon stderr", (tmp_path / "requester.stderr").read_bytes())]:
        _assert_clean(name, data, markers, [])
    # Both daemons log structured JSON, one object per line, and those are the lines checked above.
    for log in (holder.stderr_path, tmp_path / "requester.stderr"):
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
        assert records, f"{log} is empty"
        assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)


class _Recording(holder_service.HolderServicer):
    """The real servicer, recording every request message's serialised bytes."""

    received: ClassVar[list[bytes]] = []

    def GetInfo(self, request, context):  # type: ignore[no-untyped-def]
        self.received.append(request.SerializeToString())
        return super().GetInfo(request, context)

    def DownloadIndex(self, request, context):  # type: ignore[no-untyped-def]
        self.received.append(request.SerializeToString())
        return super().DownloadIndex(request, context)

    def Match(self, request_iterator, context):  # type: ignore[no-untyped-def]
        def recorded():  # type: ignore[no-untyped-def]
            for message in request_iterator:
                self.received.append(message.SerializeToString())
                yield message

        return super().Match(recorded(), context)


def test_bytes_received_by_the_holder_carry_no_requester_plaintext(
    setup: tuple[Workspace, list[str], list[bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ws, markers, derived = setup
    monkeypatch.setattr(holder_service, "HolderServicer", _Recording)
    daemon = holder_service.HolderDaemon.from_config(load_holder_config(ws.holder_config))
    daemon.start()
    caplog.set_level(logging.DEBUG, logger="blindmatch")
    try:
        done = match_approved(ws, blindmatch_command("requester", "match", str(ws.queries), "--config",
                                                     str(ws.requester_config), "--out", str(tmp_path / "r.csv"), "--json",
                                                     "--no-progress"))
        assert done.returncode == 0, done.stderr
    finally:
        daemon.stop(5)
        daemon.runtime.engine.close()
    assert len(_Recording.received) > 3  # GetInfo, Hello, batches, Close at least
    _assert_clean("bytes received by the holder", b"\0".join(_Recording.received), markers, derived)
    _assert_clean("holder log records", caplog.text.encode(), markers, derived)
