"""The pilot workspace's holder daemon as a subprocess for the length of a ``with`` block."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from blindmatch.pilot.processes import HolderProcess
from blindmatch.pilot.workspace import Workspace


@contextmanager
def running_holder(workspace: Workspace, logs: str = "logs") -> Iterator[HolderProcess]:
    """``holder serve`` logging under ``workspace.root / logs``, drained with SIGTERM on the way out
    unless the test has already stopped it (a test that kills the holder leaves nothing to drain)."""
    process = HolderProcess(workspace.holder_config, workspace.root / logs)
    process.start()
    try:
        yield process
    finally:
        if process.process is not None and process.process.poll() is None:
            process.terminate()
