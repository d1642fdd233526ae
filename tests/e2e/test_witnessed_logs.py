"""Live holder, requester and witness daemons: both logs end cosigned, and a rewrite is caught.

Issue 14's first rewrite: the holder's operator erases a session from its log and re-signs
everything with the holder's own audit key. The rewritten log verifies on its own; checked
against the witness (``audit verify --witness``) it fails, from the holder's side alone,
whether the operator keeps ``audit/cosigned`` or deletes it. On the way, a one-shot
``requester match`` run while the witness is down still succeeds and says its checkpoint
is left for later; the requester daemon submits it once the witness is back.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from blindmatch.audit import AuditLog
from blindmatch.audit.cosignature import WitnessKey
from blindmatch.audit.cosigned import COSIGNED_NAME
from blindmatch.audit.events import ENVELOPE_KEYS
from blindmatch.audit.log import KEY_NAME, PUB_NAME
from blindmatch.pilot.demo import run_match
from blindmatch.pilot.officials import approve_job
from blindmatch.pilot.processes import HolderProcess, WitnessProcess, blindmatch_command, build_index
from blindmatch.pilot.witness import (
    cosigned_sizes,
    install_witness,
    wait_until_cosigned,
    witness_config_path,
    witness_key_path,
)
from blindmatch.pilot.witness import witness_key as pilot_witness_key
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.witnessing import LATER
from blindmatch.vocabulary import JobState
from tests.helpers.holder_process import running_holder

pytestmark = pytest.mark.timeout(300)
COSIGN_WAIT_SECONDS = 60.0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = create_workspace(tmp_path_factory.mktemp("witnessed"), holder_records=300, queries=40,
                          matching={"batch_size": 16})
    install_witness(ws)
    build_index(ws)
    return ws


@pytest.fixture(scope="module")
def witness_key(workspace: Workspace) -> WitnessKey:
    return pilot_witness_key(workspace)


@pytest.fixture(scope="module")
def holder(workspace: Workspace) -> Iterator[HolderProcess]:
    with running_holder(workspace) as process:
        yield process


def _start_requester_daemon(workspace: Workspace) -> subprocess.Popen[bytes]:
    config = load_requester_config(workspace.requester_config)
    stderr = (workspace.root / "logs" / "requester-daemon.stderr").open("wb")
    process = subprocess.Popen(blindmatch_command("requester", "serve", "--config", str(workspace.requester_config)),
                               stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 60
    while not config.socket_path.exists():
        assert process.poll() is None and time.monotonic() < deadline, "requester daemon did not start"
        time.sleep(0.05)
    with grpc.insecure_channel(config.service_target) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
    return process


def _matched(workspace: Workspace, out: Path) -> dict[str, object]:
    """One job through ``requester match``: prepared, approved by the official, then run."""
    prepared = run_match(workspace, out, awaiting=True)
    approve_job(workspace, str(prepared["job_id"]), officials=("alice.key",))
    return run_match(workspace, out)


def _wait_until_cosigned(directory: Path, key: WitnessKey) -> int:
    cosigned = wait_until_cosigned(directory, key, COSIGN_WAIT_SECONDS)
    assert cosigned > 0, f"{directory}: (latest checkpoint, cosigned) stayed {cosigned_sizes(directory, key)}"
    return cosigned


def _verify(directory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(blindmatch_command("audit", "verify", str(directory), *extra), capture_output=True, text=True)


def _erase_session(holder_dir: Path, session_id: str) -> None:
    """What the holder's operator can do: rebuild the log without one session's entries,
    every entry and checkpoint re-signed with the holder's own audit key."""
    audit, scratch = holder_dir / "audit", holder_dir.parent / "rewrite"
    entries = [json.loads(line) for line in (audit / "log.jsonl").read_bytes().splitlines()]
    (scratch / "audit").mkdir(parents=True, mode=0o700)
    for name in (KEY_NAME, PUB_NAME):
        shutil.copy2(audit / name, scratch / "audit" / name)
    origin = (audit / PUB_NAME).read_text().split("+", 1)[0]
    with AuditLog.open(scratch, origin) as fake:
        for entry in entries:
            if entry.get("session_id") != session_id:
                fake.append(entry["event"], **{k: v for k, v in entry.items() if k not in ENVELOPE_KEYS})
    for name in ("log.jsonl", "checkpoints"):
        os.replace(scratch / "audit" / name, audit / name)
    shutil.rmtree(scratch)


def test_live_daemons_end_cosigned_and_a_rewritten_holder_log_is_caught(
    workspace: Workspace, holder: HolderProcess, witness_key: WitnessKey
) -> None:
    # The witness is down: a one-shot run succeeds, and says who has not cosigned and what happens next.
    offline = _matched(workspace, workspace.requester_dir / "offline.csv")
    assert offline["state"] == "succeeded"
    witnesses = offline["witnesses"]
    assert isinstance(witnesses, dict) and witnesses["cosigned_by"] == [] and witnesses["later"] == LATER
    assert [p["witness"] for p in witnesses["pending"]] == [witness_key.name]
    witness = WitnessProcess(witness_config_path(workspace), workspace.root / "logs")
    witness.start()
    requester = _start_requester_daemon(workspace)
    try:
        # The daemon submits the one-shot run's checkpoint; then a session through the daemon.
        _wait_until_cosigned(workspace.requester_dir, witness_key)
        prepared = run_match(workspace, workspace.requester_dir / "online.csv", awaiting=True)
        assert prepared["via"] == "daemon"
        approve_job(workspace, str(prepared["job_id"]), officials=("alice.key",))  # the daemon runs it once released
        store, deadline = JobStore(load_requester_config(workspace.requester_config).store_path), time.monotonic() + 120
        while store.get(str(prepared["job_id"])).state != JobState.SUCCEEDED:
            assert store.get(str(prepared["job_id"])).state in (JobState.AWAITING_APPROVAL, JobState.QUEUED,
                                                                JobState.RUNNING) and time.monotonic() < deadline
            time.sleep(0.1)
        for side in (workspace.holder_dir, workspace.requester_dir):
            _wait_until_cosigned(side, witness_key)
    finally:
        requester.terminate()
        requester_exit = requester.wait(30)
        holder_exit = holder.terminate()  # each daemon submits its shutdown checkpoint before it exits
        witness_exit = witness.terminate()
    assert (requester_exit, holder_exit, witness_exit) == (0, 0, 0)
    for side in (workspace.holder_dir, workspace.requester_dir):
        latest, cosigned = cosigned_sizes(side, witness_key)
        assert latest == cosigned > 0, side
        done = _verify(side, "--witness", str(witness_key_path(workspace)))
        assert done.returncode == 0 and f"witnessed: {witness_key.name} cosigned size {cosigned}" in done.stdout, done
    reconciled = subprocess.run(blindmatch_command("audit", "reconcile", str(workspace.holder_dir),
                                                   str(workspace.requester_dir)), capture_output=True, text=True)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr

    entries = [json.loads(line) for line in (workspace.holder_dir / "audit" / "log.jsonl").read_bytes().splitlines()]
    erased = next(e["session_id"] for e in entries if e["event"] == "session_closed")
    _erase_session(workspace.holder_dir, erased)
    assert _verify(workspace.holder_dir).returncode == 0  # re-signed with its own key: verifies on its own
    caught = _verify(workspace.holder_dir, "--witness", str(witness_key_path(workspace)))
    assert caught.returncode != 0
    assert "the log was rewritten (or forked) after the witness saw it" in caught.stderr \
        or "entries were removed after the witness saw them" in caught.stderr, caught.stderr
    # Deleting the cosignatures as well does not help: the witness's own note still contradicts the log.
    (workspace.holder_dir / "audit" / COSIGNED_NAME).unlink()
    hidden = _verify(workspace.holder_dir, "--witness", str(witness_key_path(workspace)))
    assert hidden.returncode != 0 and "carries a valid cosignature" in hidden.stderr, hidden.stderr
    exported = subprocess.run(blindmatch_command("witness", "export", "--config", str(witness_config_path(workspace)),
                                                 (workspace.holder_dir / "audit" / PUB_NAME).read_text().split("+")[0]),
                              capture_output=True, text=True, check=True)
    note = workspace.root / "holder-witnessed.note"
    note.write_text(exported.stdout)
    with_note = _verify(workspace.holder_dir, "--witness", str(witness_key_path(workspace)), "--witnessed", str(note))
    assert with_note.returncode != 0 and "after the witness saw" in with_note.stderr, with_note.stderr
