"""rbcl's temporary copy of libsodium is removed (issue 17 item 8).

Each check runs in a subprocess with a private TMPDIR, so files that other processes on
the machine create in the shared temporary directory cannot disturb the count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from blindmatch.crypto import sodium

SRC = Path(__file__).resolve().parents[2] / "src"


def _run(code_or_args: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, *code_or_args], env=env, capture_output=True, text=True, timeout=120, check=False)


def test_blindmatch_help_leaves_no_temporary_file(tmp_path: Path) -> None:
    before = sorted(tmp_path.iterdir())
    done = _run(["-m", "blindmatch", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(tmp_path.iterdir()) == before == []


def test_raw_rbcl_import_would_leak_so_the_fix_is_needed(tmp_path: Path) -> None:
    """The upstream behaviour this module works around: importing rbcl alone leaves a copy."""
    done = _run(["-c", "import rbcl"], tmp_path)
    assert done.returncode == 0, done.stderr
    leaked = [p.name for p in tmp_path.iterdir()]
    assert len(leaked) == 1 and leaked[0].endswith(".so")


def test_import_in_process_removes_copy_while_libsodium_keeps_working(tmp_path: Path) -> None:
    code = (
        "import os, tempfile\n"
        "from blindmatch.crypto import group\n"
        "from blindmatch.crypto.sodium import sodium_version\n"
        "assert os.listdir(tempfile.gettempdir()) == [], os.listdir(tempfile.gettempdir())\n"
        "s = group.random_scalar()\n"
        "assert group.invert(group.invert(s)) == s\n"
        "print(sodium_version())\n"
    )
    done = _run(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == sodium.sodium_version()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform == "win32", reason="Windows keeps a loaded DLL's file")
def test_this_process_has_no_copy_left() -> None:
    loader = sys.modules["rbcl._sodium"]
    assert not os.path.exists(loader.lib_path)
    assert not hasattr(loader, "sodium_bs")
