"""Officials approve prepared jobs with their own keys; bad approvals sign and send nothing."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.job_runner import job_runner

from blindmatch.cli.main import main
from blindmatch.pilot.processes import HolderProcess, blindmatch_command, build_index
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.approvals import Approvals
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import JobRunner
from blindmatch.vocabulary import ExitCode, JobState, Mode

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = create_workspace(tmp_path_factory.mktemp("approval"), holder_records=300, queries=40,
                          matching={"batch_size": 16}, dual_control_records=50)
    build_index(ws)
    holder = HolderProcess(ws.holder_config, ws.root / "logs")
    holder.start()
    yield ws
    holder.terminate()


@pytest.fixture
def runner(workspace: Workspace) -> Iterator[JobRunner]:
    with job_runner(workspace.requester_config) as made:
        yield made


def official(workspace: Workspace, *args: str) -> int:
    return main(["official", *args, "--config", str(workspace.requester_config)])


def shown(workspace: Workspace, job_id: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    capsys.readouterr()
    assert official(workspace, "show", job_id, "--json") == 0
    info: dict[str, object] = json.loads(capsys.readouterr().out)
    return info


def approve(workspace: Workspace, job_id: str, key: str, digest: str, *extra: str) -> int:
    return official(workspace, "approve", job_id, "--key", str(workspace.officials_dir / key),
                    "--passphrase-file", str(workspace.passphrase_file), "--digest", digest, *extra)


def prepared_job(runner: JobRunner, workspace: Workspace, tmp_path: Path) -> str:
    job, _ = runner.submit(workspace.queries, tmp_path / "results.csv", Mode.MEMBERSHIP)
    outcome = runner.run(job.id)
    assert outcome.exit_state == JobState.AWAITING_APPROVAL and not runner.store.has_sessions(job.id)
    return job.id


def test_prepared_job_runs_only_after_two_officials_approve(
    workspace: Workspace, runner: JobRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = prepared_job(runner, workspace, tmp_path)
    info = shown(workspace, job_id, capsys)
    assert info["holder"] == "Example Tax Authority" and info["mode"] == "membership"
    assert info["official"] == "Alice Clerk" and info["signed_by"] == [] and len(str(info["digest"])) == 64
    assert int(str(info["elements"])) > 50  # over the dual-control size
    # Running again without approval sends nothing and keeps the same prepared requests.
    assert runner.run(job_id).exit_state == JobState.AWAITING_APPROVAL
    assert shown(workspace, job_id, capsys)["digest"] == info["digest"]
    assert approve(workspace, job_id, "alice.key", str(info["digest"]), "--await-cosigner") == 0
    assert runner.store.get(job_id).state == JobState.AWAITING_APPROVAL
    assert approve(workspace, job_id, "bob.key", str(info["digest"])) == 0
    assert runner.store.get(job_id).state == JobState.QUEUED
    assert runner.run(job_id).exit_state == JobState.SUCCEEDED


def test_one_official_is_not_enough_for_a_large_session(
    workspace: Workspace, runner: JobRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = prepared_job(runner, workspace, tmp_path)
    assert approve(workspace, job_id, "alice.key", str(shown(workspace, job_id, capsys)["digest"])) == 0
    final = runner.run(job_id).job
    assert (final.state, final.reason) == (JobState.REFUSED, "dual_control_missing")


def test_bad_approvals_sign_nothing(
    workspace: Workspace, runner: JobRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = prepared_job(runner, workspace, tmp_path)
    digest = str(shown(workspace, job_id, capsys)["digest"])
    wrong = tmp_path / "wrong-passphrase"
    wrong.write_text("not the passphrase\n")
    wrong.chmod(0o600)
    capsys.readouterr()
    assert official(workspace, "approve", job_id, "--key", str(workspace.officials_dir / "alice.key"),
                    "--passphrase-file", str(wrong), "--digest", digest) == ExitCode.FAILURE
    assert "wrong passphrase for" in capsys.readouterr().err
    # A digest of other requests (changed parameters, or another job's) is refused.
    assert approve(workspace, job_id, "alice.key", "00" * 32) == ExitCode.FAILURE
    assert "differ from digest" in capsys.readouterr().err
    assert approve(workspace, "0000000000000000", "alice.key", digest) == ExitCode.USAGE
    approvals = Approvals(runner.store)
    assert all(not s.signatures for s in approvals.pending(job_id))
    assert runner.store.get(job_id).state == JobState.AWAITING_APPROVAL
    # Rejected: the job ends and its requests are never sent, nor can they be approved later.
    assert official(workspace, "reject", job_id, "--reason", "not covered by the court order") == 0
    assert runner.store.get(job_id).state == JobState.REJECTED and approvals.pending(job_id) == []
    assert approve(workspace, job_id, "alice.key", digest) == ExitCode.FAILURE
    assert not runner.store.has_sessions(job_id)


def test_daemon_runs_a_job_once_officials_release_it(
    workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load_requester_config(workspace.requester_config)
    daemon = subprocess.Popen(blindmatch_command("requester", "serve", "--config", str(workspace.requester_config)),
                              stdout=subprocess.DEVNULL, stderr=(tmp_path / "daemon.stderr").open("wb"))
    try:
        deadline = time.monotonic() + 60
        while not config.socket_path.exists():
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        match = blindmatch_command("requester", "match", str(workspace.queries), "--config",
                                   str(workspace.requester_config), "--out", str(tmp_path / "r.csv"), "--json", "--no-progress")
        first = subprocess.run(match, capture_output=True, text=True, timeout=120)
        assert first.returncode == ExitCode.AWAITING_APPROVAL, first.stderr
        job_id = json.loads(first.stdout.strip().splitlines()[-1])["job_id"]
        digest = str(shown(workspace, job_id, capsys)["digest"])
        assert approve(workspace, job_id, "bob.key", digest, "--await-cosigner") == 0  # any order
        assert approve(workspace, job_id, "alice.key", digest) == 0
        store = JobStore(config.store_path)
        while store.get(job_id).state in (JobState.QUEUED, JobState.RUNNING):
            assert time.monotonic() < deadline + 60
            time.sleep(0.1)
        assert store.get(job_id).state == JobState.SUCCEEDED, store.get(job_id).error
    finally:
        daemon.terminate()
        daemon.wait(30)
