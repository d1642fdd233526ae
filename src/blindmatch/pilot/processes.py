"""The pilot's processes: ``blindmatch`` commands as subprocesses, the holder, issuer and witness daemons among them."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from blindmatch.pilot.workspace import Workspace

HOLDER_READY_SECONDS = 30.0


def blindmatch_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "blindmatch", *args]


class HolderProcess:
    """``blindmatch holder serve`` as a subprocess; stdout/stderr go to files under ``log_dir``.

    Each start writes new files (``holder-N.stdout``, the first free ``N``), so a restart, or a
    re-run of the demo in the same workspace, never overwrites an earlier run's output.
    """

    role = "holder"

    def __init__(self, config: Path, log_dir: Path) -> None:
        self.config = config
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0  # how often this object started its daemon
        self._number = 0  # the N of the output files of the latest start

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.role}-{self._number}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.role}-{self._number}.stderr"

    def start(self) -> None:
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._number += 1
        while self.stdout_path.exists() or self.stderr_path.exists():
            self._number += 1
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(blindmatch_command(self.role, "serve", "--config", str(self.config)),
                                            stdout=out, stderr=err)
        deadline = time.monotonic() + HOLDER_READY_SECONDS
        while b"listening on" not in self.stdout_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.role} did not start: {self.stderr_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """kill -9: no drain, no checkpoint; the crash case."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait for the drain; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


class IssuerProcess(HolderProcess):
    """``blindmatch issuer serve`` as a subprocess, started and stopped as the holder's is."""

    role = "issuer"


class WitnessProcess(HolderProcess):
    """``blindmatch witness serve`` as a subprocess: the pilot's inspector general."""

    role = "witness"


def build_index(workspace: Workspace, records: Path | None = None) -> None:
    subprocess.run(
        blindmatch_command("holder", "index", str(records or workspace.records), "--config", str(workspace.holder_config), "--quiet"),
        check=True, stdout=subprocess.DEVNULL,
    )
