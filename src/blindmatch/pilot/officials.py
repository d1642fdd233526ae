"""The pilot plays the requesting organisation's officials, through the CLI a person would use.

Each official's encrypted key is in the workspace's ``officials/`` directory, outside
the requester daemon's; they read what a prepared job will ask (``official show``) and
sign it with ``official approve``. Alice signs first and waits for a co-signer; Bob's
signature releases the job, so a session over the policy's dual-control size carries both.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from blindmatch.pilot.processes import blindmatch_command
from blindmatch.pilot.workspace import Workspace


def _official(workspace: Workspace, *args: str) -> str:
    done = subprocess.run(
        blindmatch_command("official", *args, "--config", str(workspace.requester_config)),
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"official {args[0]} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout


def show_job(workspace: Workspace, job_id: str) -> dict[str, Any]:
    """``blindmatch official show JOB --json``: what the officials are asked to approve."""
    shown: dict[str, Any] = json.loads(_official(workspace, "show", job_id, "--json"))
    return shown


def approve_job(workspace: Workspace, job_id: str, officials: tuple[str, ...] = ("alice.key", "bob.key")) -> dict[str, Any]:
    """Each official in turn approves the digest they were shown; the last one releases the job."""
    shown = show_job(workspace, job_id)
    for n, key in enumerate(officials):
        wait = ["--await-cosigner"] if n < len(officials) - 1 else []
        _official(workspace, "approve", job_id, "--key", str(workspace.officials_dir / key),
                  "--passphrase-file", str(workspace.passphrase_file), "--digest", shown["digest"], *wait)
    return shown
