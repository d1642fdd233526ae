"""A job store that cannot lie (issue 17): flipped bits fail the job instead of changing a
result, a store that forgot audited sessions is refused, a failed RESULTS.csv write leaves
no hidden copy of personal data."""

from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.job_runner import job_runner

from blindmatch.cli.main import main
from blindmatch.pilot.processes import HolderProcess, blindmatch_command, build_index
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester import inputs
from blindmatch.requester.config import RequesterConfig, load_requester_config
from blindmatch.requester.store_check import JobStoreCorrupt
from blindmatch.vocabulary import ExitCode, Mode
from tests.helpers.officials import approve, run_approved

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = create_workspace(tmp_path_factory.mktemp("store"), holder_records=500, queries=60,
                          matching={"batch_size": 16, "window": 2})
    build_index(ws)
    process = HolderProcess(ws.holder_config, ws.root / "logs")
    process.start()
    yield ws
    process.terminate()


@pytest.fixture
def config(workspace: Workspace) -> RequesterConfig:
    config = load_requester_config(workspace.requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    return config


def run_job(workspace: Workspace, config: RequesterConfig, queries: Path, out: Path) -> tuple[str, str, str]:
    """(job id, end state, error) of one in-process run, approved by the official when it waits."""
    with job_runner(config) as runner:
        job, _ = runner.submit(queries, out, Mode.MEMBERSHIP)
        outcome = run_approved(workspace, runner, job.id)
        return job.id, outcome.exit_state, outcome.job.error


def sql(config: RequesterConfig, statement: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(config.store_path) as conn:
        rows = conn.execute(statement, params).fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("flip", ["record", "hit bit"])
def test_a_flipped_bit_fails_the_job_instead_of_changing_a_result(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, flip: str) -> None:
    out = tmp_path / "results.csv"
    job_id, state, _ = run_job(workspace, config, workspace.queries, out)
    assert state == "succeeded"
    out.unlink()
    if flip == "record":  # a record's true becomes false
        (row,) = sql(config, "SELECT row FROM records WHERE job_id = ? AND matched = 1 LIMIT 1", job_id)[0]
        sql(config, "UPDATE records SET matched = 0, tier = NULL WHERE job_id = ? AND row = ?", job_id, row)
        expected = f"the stored result of row {row} (matched=false) contradicts its evaluated batches"
    else:  # one hit bit of a batch flips
        session_id, seq, hits = next(r for r in sql(
            config, "SELECT session_id, seq, hits FROM batches WHERE job_id = ?", job_id) if any(r[2]))
        flipped = bytearray(hits)  # type: ignore[arg-type]
        flipped[next(i for i, b in enumerate(flipped) if b)] ^= 0xFF
        sql(config, "UPDATE batches SET hits = ? WHERE session_id = ? AND seq = ?", bytes(flipped), session_id, seq)
        expected = "contradicts its evaluated batches"
    sql(config, "UPDATE jobs SET state = 'queued' WHERE id = ?", job_id)  # resume the finished job
    job_id_again, state, error = run_job(workspace, config, workspace.queries, out)
    assert (job_id_again, state) == (job_id, "failed")
    assert expected in error and "no RESULTS.csv is written" in error
    assert not out.exists()


def test_an_emptied_store_with_audited_sessions_is_refused(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, state, _ = run_job(workspace, config, workspace.queries, tmp_path / "results.csv")
    assert state == "succeeded"
    gc.collect()  # close the finished run's store connections, as a stopped process would
    for suffix in ("-wal", "-shm"):
        Path(f"{config.store_path}{suffix}").unlink(missing_ok=True)
    config.store_path.write_bytes(b"")  # truncated to zero
    with pytest.raises(JobStoreCorrupt, match=r"does not know .* sessions the audit log"):
        run_job(workspace, config, workspace.queries, tmp_path / "again.csv")
    code = main(["requester", "match", str(workspace.queries), "--out", str(tmp_path / "again.csv"),
                 "--config", str(workspace.requester_config), "--json"])
    assert code == 1
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert str(config.store_path) in last["error"]
    assert not (tmp_path / "again.csv").exists()
    config.store_path.unlink()  # the next case starts over knowingly: store and audit log aside
    (config.audit_dir / "audit").rename(tmp_path / "old-audit")


def test_a_failed_results_write_leaves_no_hidden_copy(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class FullDisk:
        """``os`` for the results writer only, with a disk that fills at fsync."""

        def __getattr__(self, name: str) -> object:
            return getattr(os, name)

        @staticmethod
        def fsync(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(inputs, "os", FullDisk())
    _, state, error = run_job(workspace, config, workspace.queries, tmp_path / "results.csv")
    monkeypatch.undo()
    assert state == "failed" and "No space left on device" in error
    assert list(tmp_path.iterdir()) == []


def test_a_corrupt_job_store_ends_with_the_json_line(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gc.collect()
    for suffix in ("-wal", "-shm"):
        Path(f"{config.store_path}{suffix}").unlink(missing_ok=True)
    config.store_path.write_bytes(b"\xff" * 8192)
    code = main(["requester", "match", str(workspace.queries), "--out", str(tmp_path / "r.csv"),
                 "--config", str(workspace.requester_config), "--json"])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    last = json.loads(captured.out.strip().splitlines()[-1])
    assert f"cannot open the job store {config.store_path}" in last["error"]
    config.store_path.unlink()


@contextmanager
def state_on_tmpfs(config: RequesterConfig, tmp_path: Path) -> Iterator[Callable[[], None]]:
    """The requester's state directory (job store, cached index, socket) on a 1 MiB tmpfs, and
    a fresh audit log to go with its fresh job store; yields ``fill()``, which leaves no room.
    The real directory and log are put back afterwards."""
    state, aside = config.state_dir, tmp_path / "state-aside"
    audit, audit_aside = config.audit_dir / "audit", tmp_path / "audit-aside"
    state.rename(aside)
    state.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(state)], check=False).returncode:
        state.rmdir()
        aside.rename(state)
        pytest.skip("cannot mount a tmpfs here")
    if audit.exists():
        audit.rename(audit_aside)

    def fill() -> None:
        with (state / "filler").open("ab", buffering=0) as handle:  # unbuffered: nothing left to flush at close
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC

    try:
        yield fill
    finally:
        gc.collect()
        subprocess.run(["umount", "-l", str(state)], check=False)
        state.rmdir()
        aside.rename(state)
        shutil.rmtree(audit, ignore_errors=True)
        if audit_aside.exists():
            audit_aside.rename(audit)


def _last_line(text: str) -> dict[str, object]:
    return json.loads(text.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.parametrize("full", ["before the job", "after the approval"])
def test_a_full_state_disk_ends_with_the_json_line(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        full: str) -> None:
    argv = ["requester", "match", str(workspace.queries), "--out", str(tmp_path / "r.csv"),
            "--config", str(workspace.requester_config), "--json"]
    with state_on_tmpfs(config, tmp_path) as fill:
        if full == "before the job":
            fill()
        else:  # prepared with room; the disk fills before the approved match runs
            assert main(argv) == ExitCode.AWAITING_APPROVAL
            approve(workspace, str(_last_line(capsys.readouterr().out)["job_id"]))
            fill()
        code = main(argv)
        captured = capsys.readouterr()
        assert code == ExitCode.FAILURE and "Traceback" not in captured.err, captured.err
        assert "database or disk is full" in str(_last_line(captured.out)["error"])
        assert not (tmp_path / "r.csv").exists()


def test_a_full_state_disk_under_the_daemon_fails_the_watching_client(
        workspace: Workspace, config: RequesterConfig, tmp_path: Path) -> None:
    """The job store fills after the approval, while the daemon (frozen meanwhile) has not
    started the released job: the client's Submit or the job itself fails naming the store."""
    command = blindmatch_command("requester", "match", str(workspace.queries), "--out", str(tmp_path / "r.csv"),
                                 "--config", str(workspace.requester_config), "--json", "--no-progress")
    with state_on_tmpfs(config, tmp_path) as fill:
        daemon = subprocess.Popen(blindmatch_command("requester", "serve", "--config", str(workspace.requester_config)),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while not config.socket_path.exists():
                assert daemon.poll() is None and time.monotonic() < deadline, daemon.stderr.read()  # type: ignore[union-attr]
                time.sleep(0.05)
            prepared = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
            assert prepared.returncode == ExitCode.AWAITING_APPROVAL, prepared.stderr
            daemon.send_signal(signal.SIGSTOP)
            try:
                approve(workspace, str(_last_line(prepared.stdout)["job_id"]))
                fill()
            finally:
                daemon.send_signal(signal.SIGCONT)
            done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
        finally:
            daemon.terminate()
            daemon.wait(30)
    assert done.returncode == ExitCode.FAILURE and "Traceback" not in done.stderr, done.stderr
    last = _last_line(done.stdout)
    assert "cannot be written: database or disk is full" in str(last["error"]), last
