"""Revocation: the holder reloads its policy on SIGHUP (and when the file changes) and refuses
a revoked official from the next session on, in the middle of a job too."""

from __future__ import annotations

import json
import signal
import time
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import tomli_w
from helpers.job_runner import job_runner

from blindmatch.pilot.processes import HolderProcess, build_index
from blindmatch.pilot.workspace import PRIMARY_OFFICIAL, REQUESTER_ORG, SECOND_OFFICIAL, Workspace, create_workspace
from blindmatch.requester.runner import Progress
from blindmatch.vocabulary import JobState, Mode
from tests.helpers.officials import _official as run_official
from tests.helpers.officials import run_approved

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[tuple[Workspace, HolderProcess]]:
    ws = create_workspace(tmp_path / "ws", holder_records=300, queries=40,
                          matching={"batch_size": 8, "session_max_records": 24, "window": 1})
    build_index(ws)
    holder = HolderProcess(ws.holder_config, ws.root / "logs")
    holder.start()
    yield ws, holder
    holder.terminate()


def end_mandate(workspace: Workspace) -> None:
    """The administrator cuts Alice's mandate short (as of a minute ago)."""
    path = workspace.holder_dir / "policy.toml"
    policy = tomllib.loads(path.read_text())
    for official in policy["organisations"][REQUESTER_ORG]["officials"]:
        if official["name"] == PRIMARY_OFFICIAL:
            official["valid_until"] = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    path.write_text(tomli_w.dumps(policy))


def remove_official(workspace: Workspace) -> None:
    """The administrator deletes Alice's entry from the policy."""
    path = workspace.holder_dir / "policy.toml"
    policy = tomllib.loads(path.read_text())
    organisation = policy["organisations"][REQUESTER_ORG]
    organisation["officials"] = [o for o in organisation["officials"] if o["name"] != PRIMARY_OFFICIAL]
    path.write_text(tomli_w.dumps(policy))


def wait_for(holder: HolderProcess, text: bytes, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in holder.stdout_path.read_bytes():
        assert time.monotonic() < deadline, holder.stdout_path.read_text()
        time.sleep(0.05)


@pytest.mark.parametrize(("revoke", "reason"), [(end_mandate, "expired"), (remove_official, "unknown_official")])
def test_sighup_revokes_an_official_in_the_middle_of_a_job(
    revoke: Callable[[Workspace], None], reason: str, workspace: tuple[Workspace, HolderProcess], tmp_path: Path
) -> None:
    """The refused session sends nothing; the job keeps its batches and waits, with new requests,
    for a new approval; once requester.toml names another official and they approve, it ends
    with the results of an uninterrupted run."""
    ws, holder = workspace
    revoked: list[int] = []

    def revoke_after_first_batch(progress: Progress) -> None:
        if progress.phase == "match" and not revoked:
            revoke(ws)
            reload_policy(holder)
            revoked.append(progress.done)

    with job_runner(ws.requester_config) as runner:
        job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        waiting = run_approved(ws, runner, job.id, revoke_after_first_batch).job
        assert revoked and waiting.state == JobState.AWAITING_APPROVAL
        assert f"the holder refused official {PRIMARY_OFFICIAL!r} ({reason}" in waiting.error
        assert "another official must approve" in waiting.error
        done = waiting.elements_done
        assert 0 < done < waiting.preparation.elements_total  # the first session ran, the next was refused
        shown = json.loads(run_official(ws, "show", job.id, "--json"))
        assert shown["waits_because"] == waiting.error and shown["signed_by"] == []
        assert runner.run(job.id).job.state == JobState.AWAITING_APPROVAL  # nothing is sent unapproved
        assert runner.store.get(job.id).elements_done == done

    name_official(ws, SECOND_OFFICIAL)
    with job_runner(ws.requester_config) as runner:
        resumed, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        assert resumed.id == job.id  # the same input resumes the waiting job
        assert runner.run(job.id).job.state == JobState.AWAITING_APPROVAL  # new requests, naming Bob
        assert json.loads(run_official(ws, "show", job.id, "--json"))["official"] == SECOND_OFFICIAL
        final = run_approved(ws, runner, job.id, officials=("bob.key",)).job
        assert final.state == JobState.SUCCEEDED, final.error
        reference, _ = runner.submit(ws.queries, tmp_path / "reference.csv", Mode.MEMBERSHIP)
        assert run_approved(ws, runner, reference.id, officials=("bob.key",)).job.state == JobState.SUCCEEDED
    assert (tmp_path / "results.csv").read_text() == (tmp_path / "reference.csv").read_text()


def name_official(workspace: Workspace, name: str) -> None:
    """The requester's administrator names the refused official's successor in requester.toml."""
    config = tomllib.loads(workspace.requester_config.read_text())
    config["official"]["name"] = name
    workspace.requester_config.write_text(tomli_w.dumps(config))


def reload_policy(holder: HolderProcess) -> None:
    before = holder.stdout_path.read_bytes().count(b"policy reloaded (SIGHUP)")
    assert holder.process is not None
    holder.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while holder.stdout_path.read_bytes().count(b"policy reloaded (SIGHUP)") == before:
        assert time.monotonic() < deadline, holder.stdout_path.read_text()
        time.sleep(0.05)


def test_a_changed_policy_file_is_reloaded_without_a_signal(workspace: tuple[Workspace, HolderProcess], tmp_path: Path) -> None:
    ws, _ = workspace
    end_mandate(ws)
    time.sleep(1.2)  # the gate checks the file at most once a second
    with job_runner(ws.requester_config) as runner:
        job, _ = runner.submit(ws.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
        final = run_approved(ws, runner, job.id).job
    assert (final.state, final.elements_done) == (JobState.AWAITING_APPROVAL, 0)
    assert f"the holder refused official {PRIMARY_OFFICIAL!r} (expired" in final.error


def test_a_broken_policy_file_keeps_the_last_valid_policy(workspace: tuple[Workspace, HolderProcess]) -> None:
    ws, holder = workspace
    (ws.holder_dir / "policy.toml").write_text("organisations = 'not a table'\n")
    assert holder.process is not None
    holder.process.send_signal(signal.SIGHUP)
    wait_for(holder, b"policy not reloaded (SIGHUP)")
    assert holder.process.poll() is None
    assert b"the previous policy stays in force" in holder.stderr_path.read_bytes()
