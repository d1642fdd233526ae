"""SoftHSM (Debian's ``softhsm2``) tokens in a temporary directory, for the PKCS#11 tests.

The tests skip when SoftHSM is not installed on a developer's machine; under CI
(``CI`` set, as ``.ci/run`` runs) a missing SoftHSM fails them instead, so a broken
install step cannot turn into a silently green run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE_PATHS = (
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/local/lib/softhsm/libsofthsm2.so"),
)
USER_PIN = "246813"
SO_PIN = "13572468"


@dataclass(frozen=True)
class SoftHsm:
    module: Path
    util: str
    conf: Path  # SOFTHSM2_CONF: its tokens live in a directory beside it

    def init_token(self, label: str, pin: str = USER_PIN) -> None:
        subprocess.run([self.util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", SO_PIN],
                       check=True, capture_output=True, env={**os.environ, "SOFTHSM2_CONF": str(self.conf)})


def find_softhsm() -> tuple[Path, str]:
    """SoftHSM's module and ``softhsm2-util``; skip (fail under CI) when they are absent."""
    module = next((path for path in MODULE_PATHS if path.is_file()), None)
    util = shutil.which("softhsm2-util")
    if module is None or util is None:
        message = "SoftHSM is not installed (apt-get install softhsm2)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; .ci/run installs it, so under CI this is a failure, not a skip")
        pytest.skip(message)
    return module, util


def softhsm_in(directory: Path) -> SoftHsm:
    """A SoftHSM configuration whose token directory is fresh and under ``directory``."""
    module, util = find_softhsm()
    tokens = directory / "tokens"
    tokens.mkdir(parents=True, mode=0o700)
    conf = directory / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    return SoftHsm(module, util, conf)
