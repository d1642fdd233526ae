"""Tests play the requesting organisation's officials through ``blindmatch official show|approve``.

The job machinery's tests run real jobs, and real jobs wait for officials: these helpers
approve a prepared job with the officials' own encrypted keys (the workspace's
``officials/``, outside the requester's directory) by calling the CLI's entry point in
this process, the code path a person's ``blindmatch official approve`` takes, without
the start-up cost of a subprocess per approval.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import threading
import time
from collections.abc import Callable, Sequence

from blindmatch.cli.main import main
from blindmatch.pilot.workspace import Workspace
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.jobs import Job, JobStore
from blindmatch.requester.runner import JobOutcome, JobRunner, Progress
from blindmatch.vocabulary import ExitCode, JobState

_OUTPUT = threading.Lock()  # redirecting sys.stdout is process-wide: one official at a time


def _official(workspace: Workspace, *args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    with _OUTPUT, contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["official", *args, "--config", str(workspace.requester_config)])
    if code != 0:
        raise AssertionError(f"official {args[0]} exited {code}: {err.getvalue().strip()}")
    return out.getvalue()


def approve(workspace: Workspace, job_id: str, officials: Sequence[str] = ("alice.key",)) -> str:
    """Each official in turn approves the digest ``official show`` printed; the last releases the job."""
    digest = str(json.loads(_official(workspace, "show", job_id, "--json"))["digest"])
    for n, key in enumerate(officials):
        wait = ["--await-cosigner"] if n < len(officials) - 1 else []
        _official(workspace, "approve", job_id, "--key", str(workspace.officials_dir / key),
                  "--passphrase-file", str(workspace.passphrase_file), "--digest", digest, *wait)
    return digest


def run_approved(
    workspace: Workspace, runner: JobRunner, job_id: str, progress: Callable[[Progress], None] | None = None,
    rounds: int = 1, officials: Sequence[str] = ("alice.key",),
) -> JobOutcome:
    """Run the job; each time it stops prepared, awaiting approval, approve it and run it again,
    up to ``rounds`` approvals (a session cut by a holder fault leaves a new request to approve)."""
    outcome = runner.run(job_id, progress)
    for _ in range(rounds):
        if outcome.exit_state != JobState.AWAITING_APPROVAL:
            break
        approve(workspace, job_id, officials)
        outcome = runner.run(job_id, progress)
    return outcome


def match_approved(workspace: Workspace, command: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``blindmatch requester match ... --json`` as a subprocess without a requester daemon;
    approved and run again (resuming the same job) when it exits awaiting approval."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if done.returncode == ExitCode.AWAITING_APPROVAL:
        approve(workspace, json.loads(done.stdout.strip().splitlines()[-1])["job_id"])
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return done


def released_job_ends(workspace: Workspace, job_id: str, timeout: float = 120) -> Job:
    """After the approval a requester daemon runs the job by itself: its end state, from the job store."""
    store = JobStore(load_requester_config(workspace.requester_config).store_path)
    deadline = time.monotonic() + timeout
    while (job := store.get(job_id)).state in (JobState.QUEUED, JobState.RUNNING):
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job.state} after {timeout} s")
        time.sleep(0.1)
    return job
