"""Who owns a requester job: a token naming this runner's process, and whether that owner still runs.

A claimed job is released only when its owner is gone (dead, a zombie, or a reused pid),
so that a crashed runner never blocks its jobs and a live one never loses them (issue 17).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat from field 3 (state) on; empty when the process is gone or there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return []
    # Field 2 (comm) is parenthesised and may contain spaces or ")": split after the last ")".
    return stat[stat.rfind(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot, /proc/<pid>/stat field 22), or None.

    A pid alone does not identify a process: after a crash and a container restart the
    dead owner's pid is often reused by an unrelated (or the new daemon's) process.
    """
    fields = _stat_fields(pid)
    return fields[19] if len(fields) > 19 else None  # field 22 overall is index 19 after comm


def _is_zombie(pid: int) -> bool:
    """A process that exited but was not yet reaped (state Z, or X while being reaped):
    ``kill(pid, 0)`` still succeeds for it, yet it will never run its jobs again."""
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] in ("Z", "X")


def owner_token() -> str:
    """Identifies this runner: ``pid:start time:random``.

    The start time tells a reused pid from the owner; the random part tells two runners
    (threads) of one process apart.
    """
    pid = os.getpid()
    return f"{pid}:{_start_time(pid) or ''}:{secrets.token_hex(4)}"


def owner_alive(owner: str | None) -> bool:
    """Whether the process named by an :func:`owner_token` still runs."""
    if not owner:
        return False
    pid_text, start, _ = ([*owner.split(":"), "", ""])[:3]
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if not start or not Path("/proc/self/stat").exists():
        return True  # without /proc (not Linux) the pid check above is all there is
    return _start_time(pid) == start and not _is_zombie(pid)
