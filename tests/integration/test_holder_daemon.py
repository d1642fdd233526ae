"""The real ``blindmatch holder`` commands as subprocesses: SIGTERM drain and kill -9 safety."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers.holder_deployment import (
    Deployment,
    make_deployment,
    write_records,
)

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.store import open_indexes
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode


def blindmatch(*args: str) -> list[str]:
    return [sys.executable, "-m", "blindmatch.cli.main", *args]


@contextmanager
def serve(dep: Deployment) -> Iterator[tuple[subprocess.Popen[str], int]]:
    proc = subprocess.Popen(blindmatch("holder", "serve", "--config", str(dep.config_path)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("listening on "), (line, proc.stderr.read() if proc.poll() is not None else "")
        yield proc, int(line.rsplit(":", 1)[1])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def served_digests(dep: Deployment, port: int) -> set[bytes]:
    with dep.channel(port) as ch:
        return {i.digest for i in pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(), timeout=10).indexes}


@pytest.mark.timeout(60)
def test_sigterm_drains_running_session(tmp_path: Path, engine: BatchEngine) -> None:
    dep = make_deployment(tmp_path, records=100)
    with serve(dep) as (proc, port), dep.channel(port) as ch:
        stub = pb_grpc.HolderStub(ch)
        session, envelope = dep.signed_session(stub, engine, range(50, 150), Mode.MEMBERSHIP)

        def terminate_mid_session() -> None:
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the daemon is now draining; the batches go out after this

        dep.run_match(stub, session, envelope, on_accept=terminate_mid_session)
        assert session.closed and session.match_count == 50
        assert proc.wait(30) == 0
        assert proc.stdout is not None and proc.stdout.read().strip().endswith("stopped")
    events = [json.loads(line)["event"] for line in (dep.root / "audit" / "log.jsonl").read_text().splitlines()]
    assert events[-3:] == ["session_closed", "budget_settled", "daemon_stopped"]
    checkpoints = (dep.root / "audit" / "checkpoints").read_text()
    assert f"\n{len(events)}\n" in checkpoints  # the shutdown checkpoint covers every entry


@pytest.mark.timeout(240)  # 30,000 records are about 390,000 index entries with the review tiers
def test_kill_9_during_rebuild_and_serve_keeps_previous_index(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, records=50)
    before = open_indexes(dep.config.index_dir)
    old = {f.digest for f in before.manifest.files.values()}
    before.close()

    write_records(tmp_path / "big.csv", range(30_000))
    rebuild = subprocess.Popen(blindmatch("holder", "index", str(tmp_path / "big.csv"), "--config", str(dep.config_path)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert rebuild.stderr is not None
    seen = ""
    while "indexing" not in seen and len(seen) < 1000:  # the progress bar: the build is under way
        seen += rebuild.stderr.read(1)
    assert "indexing" in seen and rebuild.poll() is None
    time.sleep(0.5)
    rebuild.send_signal(signal.SIGKILL)
    assert rebuild.wait(10) == -signal.SIGKILL

    with serve(dep) as (proc, port):
        assert served_digests(dep, port) == old
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with serve(dep) as (proc, port):
        assert served_digests(dep, port) == old
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0

    result = subprocess.run(blindmatch("holder", "index", str(tmp_path / "big.csv"), "--config", str(dep.config_path), "--quiet"),
                            capture_output=True, text=True, timeout=180)  # 8 index entries per record since the review tiers
    assert result.returncode == 0, result.stderr
    assert "30000 rows read, 30000 indexed" in result.stdout
    after = open_indexes(dep.config.index_dir)
    assert {f.digest for f in after.manifest.files.values()}.isdisjoint(old)
    after.close()
    assert not [p for p in dep.config.index_dir.iterdir() if ".tmp-" in p.name]  # leftovers of the killed build are gone


@pytest.mark.timeout(30)
def test_cli_errors_and_keygen(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, records=10)
    result = subprocess.run(blindmatch("holder", "keygen", "--config", str(dep.config_path)), capture_output=True, text=True)
    assert result.returncode == 1 and "refusing to overwrite" in result.stderr
    good = (tmp_path / "holder.toml").read_text()
    (tmp_path / "holder.toml").write_text(good.replace("max_batch", "max_bach"))
    # Configuration errors exit 2 ("usage or configuration"), whichever command reads the file.
    for command in (["serve"], ["index", str(tmp_path / "records.csv")]):
        result = subprocess.run(blindmatch("holder", *command, "--config", str(dep.config_path)),
                                capture_output=True, text=True, check=False)
        assert result.returncode == 2 and "holder.limits.max_bach: unknown key" in result.stderr, result.stderr
    (tmp_path / "holder.toml").write_bytes(good.replace("Example Tax Authority", "Caf\xe9").encode("latin-1"))
    result = subprocess.run(blindmatch("holder", "serve", "--config", str(dep.config_path)),
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "is not valid TOML: not UTF-8 text" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "holder.toml").write_text(good)
    (tmp_path / "policy.toml").write_text((tmp_path / "policy.toml").read_text() + "surprise = 1\n")
    result = subprocess.run(blindmatch("holder", "serve", "--config", str(dep.config_path)),
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and "unknown key" in result.stderr
    result = subprocess.run(blindmatch("pki", "init", str(tmp_path / "p2"), "--org", "A Org", "--org", "B Org"),
                            capture_output=True, text=True)
    assert result.returncode == 0 and (tmp_path / "p2" / "b-org" / "client.key").exists()


@pytest.mark.timeout(60)
def test_second_holder_on_the_same_port_fails(tmp_path: Path) -> None:
    """gRPC's default SO_REUSEPORT would let a second daemon share the port (and the connections)."""
    dep = make_deployment(tmp_path, records=10)
    with serve(dep) as (proc, port):
        text = dep.config_path.read_text()
        dep.config_path.write_text(text.replace('listen = "127.0.0.1:0"', f'listen = "127.0.0.1:{port}"'))
        second = subprocess.run(blindmatch("holder", "serve", "--config", str(dep.config_path)),
                                capture_output=True, text=True, timeout=30, check=False)
        assert second.returncode == 1 and "listening on" not in second.stdout
        assert f"blindmatch: error: cannot listen on 127.0.0.1:{port}" in second.stderr
        assert "Traceback" not in second.stderr
        assert served_digests(dep, port)  # the first holder is unaffected
        assert proc.poll() is None
