"""``blindmatch keys`` and ``blindmatch oprf``: key files are private and never overwritten."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from blindmatch.keyfile import KeyFileError, read_oprf_key

SK_HEX = "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e"


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blindmatch", *args], input=stdin, capture_output=True, text=True)


def test_generate_writes_0600_and_refuses_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "oprf.key"
    first = _cli("keys", "generate", "--out", str(out), "--json")
    assert first.returncode == 0, first.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    key_id = json.loads(first.stdout)["key_id"]
    secret = read_oprf_key(out).hex()
    assert secret not in first.stdout + first.stderr
    before = out.read_bytes()
    second = _cli("keys", "generate", "--out", str(out))
    assert second.returncode == 1 and "refusing to overwrite" in second.stderr
    assert out.read_bytes() == before
    assert _cli("keys", "id", str(out)).stdout.strip() == key_id


def test_permissive_key_file_refused(tmp_path: Path) -> None:
    out = tmp_path / "oprf.key"
    assert _cli("keys", "generate", "--out", str(out)).returncode == 0
    os.chmod(out, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_oprf_key(out)
    result = _cli("keys", "id", str(out))
    assert result.returncode == 1 and "group or others" in result.stderr


def test_oprf_evaluate_matches_rfc_vectors_and_keeps_order() -> None:
    result = _cli("oprf", "evaluate", "--key-hex", SK_HEX, stdin="00\n5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6",
        "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73",
    ]


def test_oprf_evaluate_rejects_bad_key_and_input() -> None:
    assert _cli("oprf", "evaluate", "--key-hex", "00" * 32).returncode == 2  # zero scalar
    assert _cli("oprf", "evaluate", "--key-hex", "zz").returncode == 2
    bad_line = _cli("oprf", "evaluate", "--key-hex", SK_HEX, stdin="00\nnothex\n")
    assert bad_line.returncode == 1 and "line 2" in bad_line.stderr


def test_every_command_has_help() -> None:
    from blindmatch.cli.main import build_parser

    parser = build_parser()
    assert _cli("--help").returncode == 0
    sub_actions = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    for name, sub in sub_actions[0].choices.items():
        assert _cli(name, "--help").returncode == 0, name
        for action in sub._actions:
            if action.__class__.__name__ == "_SubParsersAction":
                for child in action.choices:
                    assert _cli(name, child, "--help").returncode == 0, f"{name} {child}"


def test_json_commands_end_with_a_json_line_on_error(tmp_path: Path) -> None:
    out = tmp_path / "oprf.key"
    assert _cli("keys", "generate", "--out", str(out)).returncode == 0
    failed = _cli("keys", "generate", "--out", str(out), "--json")
    assert failed.returncode == 1
    last = json.loads(failed.stdout.strip().splitlines()[-1])
    assert last["exit_code"] == 1 and "refusing to overwrite" in last["error"]
