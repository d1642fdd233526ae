"""The requester daemon's Submit checks and its SIGTERM drain, as a watching client sees them.

No holder runs here: jobs wait in the retry loop, which is where a drain finds them.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from blindmatch.pilot.processes import blindmatch_command
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import RequesterConfig, load_requester_config
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import requester_pb2 as rpb
from blindmatch.v1 import requester_pb2_grpc as rpb_grpc

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return create_workspace(tmp_path_factory.mktemp("daemon"), holder_records=10, queries=20)


def _start_daemon(workspace: Workspace, log: Path) -> subprocess.Popen[bytes]:
    config = load_requester_config(workspace.requester_config)
    process = subprocess.Popen(blindmatch_command("requester", "serve", "--config", str(workspace.requester_config)),
                               stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    with grpc.insecure_channel(config.service_target) as channel:
        deadline = time.monotonic() + 60
        while not config.socket_path.exists():
            assert process.poll() is None and time.monotonic() < deadline, "requester daemon did not start"
            time.sleep(0.05)
        grpc.channel_ready_future(channel).result(timeout=30)
    return process


@pytest.fixture()
def daemon(workspace: Workspace, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = _start_daemon(workspace, tmp_path / "daemon.stderr")
    yield process
    if process.poll() is None:
        process.terminate()
        process.wait(30)


def _jobs(config: RequesterConfig) -> int:
    with sqlite3.connect(config.store_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])


def _match(workspace: Workspace, queries: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        blindmatch_command("requester", "match", str(queries), "--config", str(workspace.requester_config),
                           "--out", str(out), "--no-progress"),
        capture_output=True, text=True, timeout=120,
    )


def test_undecodable_submit_is_invalid_argument_with_a_reason(workspace: Workspace,
                                                              daemon: subprocess.Popen[bytes]) -> None:
    config = load_requester_config(workspace.requester_config)
    with grpc.insecure_channel(config.service_target) as channel, pytest.raises(grpc.RpcError) as caught:
        channel.unary_unary("/blindmatch.v1.Requester/Submit")(b"\xff\xff\xff\xff not a protobuf", timeout=10)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert reason_from_rpc_error(caught.value) == "bad_request"


@pytest.mark.parametrize("where", ["queries", "missing_dir"])
def test_submit_refuses_an_unwritable_or_clobbering_output(
    where: str, workspace: Workspace, daemon: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    config = load_requester_config(workspace.requester_config)
    out = workspace.queries if where == "queries" else tmp_path / "nowhere" / "r.csv"
    before = _jobs(config)
    with grpc.insecure_channel(config.service_target) as channel:
        stub = rpb_grpc.RequesterStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Submit(rpb.JobSpec(queries_path=str(workspace.queries), out_path=str(out)))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert _jobs(config) == before  # no job, so nothing was sent to the holder


@pytest.mark.parametrize("where", ["queries", "missing_dir"])
@pytest.mark.parametrize("via", ["daemon", "in-process"])
def test_cli_refuses_an_unwritable_or_clobbering_output(
    where: str, via: str, workspace: Workspace, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if via == "daemon":
        request.getfixturevalue("daemon")
    config = load_requester_config(workspace.requester_config)
    queries = tmp_path / "q.csv"
    queries.write_bytes(workspace.queries.read_bytes())
    out = queries if where == "queries" else tmp_path / "nowhere" / "r.csv"
    before = _jobs(config) if config.store_path.exists() else 0
    done = _match(workspace, queries, out)
    assert done.returncode == 2, done.stderr
    assert "results" in done.stderr and "Traceback" not in done.stderr
    assert queries.read_bytes() == workspace.queries.read_bytes()
    assert (_jobs(config) if config.store_path.exists() else 0) == before


def test_sigterm_while_a_client_watches_says_the_job_is_queued(workspace: Workspace, tmp_path: Path) -> None:
    config = load_requester_config(workspace.requester_config)
    daemon = _start_daemon(workspace, tmp_path / "daemon.stderr")
    try:
        client = subprocess.Popen(
            blindmatch_command("requester", "match", str(workspace.queries), "--config", str(workspace.requester_config),
                               "--out", str(tmp_path / "r.csv"), "--no-progress"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        with sqlite3.connect(config.store_path) as db:  # the job is running: retrying the absent holder
            while db.execute("SELECT 1 FROM jobs WHERE out_path = ? AND state = 'running'",
                             (str((tmp_path / "r.csv").resolve()),)).fetchone() is None:
                assert client.poll() is None and time.monotonic() < deadline, client.communicate()
                time.sleep(0.05)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        _, stderr = client.communicate(timeout=60)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert client.returncode == 5, stderr
    assert "queued" in stderr and "resumes when the daemon restarts" in stderr, stderr
    assert "UNAVAILABLE" not in stderr and "Traceback" not in stderr
    with sqlite3.connect(config.store_path) as db:
        states = {row[0] for row in db.execute("SELECT state FROM jobs WHERE out_path = ?",
                                               (str((tmp_path / "r.csv").resolve()),))}
    assert states == {"queued"}


def test_a_daemon_that_stops_answering_is_given_up_on(workspace: Workspace, tmp_path: Path) -> None:
    """SIGSTOP: the daemon's socket stays open but nothing answers (as when a dead daemon's
    child still holds it); the watching client must not wait forever (issue 17)."""
    config = load_requester_config(workspace.requester_config)
    daemon = _start_daemon(workspace, tmp_path / "daemon.stderr")
    try:
        client = subprocess.Popen(
            blindmatch_command("requester", "match", str(workspace.queries), "--config", str(workspace.requester_config),
                               "--out", str(tmp_path / "r.csv"), "--no-progress", "--json"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 60
        with sqlite3.connect(config.store_path) as db:
            while db.execute("SELECT 1 FROM jobs WHERE out_path = ? AND state = 'running'",
                             (str((tmp_path / "r.csv").resolve()),)).fetchone() is None:
                assert client.poll() is None and time.monotonic() < deadline, client.communicate()
                time.sleep(0.05)
        daemon.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        stdout, stderr = client.communicate(timeout=60)
        waited = time.monotonic() - stopped_at
    finally:
        daemon.kill()
        daemon.wait(30)
    assert client.returncode == 5, stderr
    assert "Traceback" not in stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["state"] == "queued" and "stopped answering" in summary["error"]
    assert waited < 30


def test_job_socket_is_owner_only(workspace: Workspace, daemon: subprocess.Popen[bytes]) -> None:
    config = load_requester_config(workspace.requester_config)
    assert stat.S_IMODE(config.socket_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.state_dir.stat().st_mode) == 0o700


def test_the_daemon_serves_health_and_announces_its_start_and_stop(workspace: Workspace) -> None:
    """The requester daemon lives as every daemon does (``transport.serving``): a start line,
    SERVING for the server and its service, NOT_SERVING-then-exit on SIGTERM, ``stopped``."""
    config = load_requester_config(workspace.requester_config)
    process = subprocess.Popen(blindmatch_command("requester", "serve", "--config", str(workspace.requester_config)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == f"requester daemon listening on {config.service_target}\n", (line, process.stderr)
        with grpc.insecure_channel(config.service_target) as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            for name in ("", "blindmatch.v1.Requester"):
                answer = check(health_pb2.HealthCheckRequest(service=name), timeout=10)
                assert answer.status == health_pb2.HealthCheckResponse.SERVING, name
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
        assert process.stdout.read() == "stopped\n"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert not config.socket_path.exists()
