"""Official key files and the ``blindmatch official keygen`` command."""

from __future__ import annotations

import argparse
import base64
import json
import os
import stat
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blindmatch.cli import official as official_cli
from blindmatch.cli.errors import CliError
from blindmatch.policy import OfficialKeyError, Policy, generate_official_key, load_official_key, parse_public_key

PASSPHRASE = b"correct horse battery staple"


def passphrase_option(directory: Path) -> list[str]:
    """``--passphrase-file`` with a 0600 file holding PASSPHRASE."""
    path = directory / "passphrase"
    if not path.exists():
        path.write_bytes(PASSPHRASE + b"\n")
        path.chmod(0o600)
    return ["--passphrase-file", str(path)]


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="blindmatch")
    official_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_generate_and_load(tmp_path: Path) -> None:
    out = tmp_path / "alice.key"
    key = generate_official_key("Alice Clerk", out, PASSPHRASE)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    pub_text = (tmp_path / "alice.key.pub").read_text()
    assert pub_text.endswith("\n") and pub_text.count("\n") == 1
    assert parse_public_key(pub_text) == key.public_key
    private = load_official_key(out, PASSPHRASE)
    assert private.public_key().public_bytes_raw() == key.public_key


def test_wrong_or_missing_passphrase_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "alice.key"
    generate_official_key("Alice Clerk", out, PASSPHRASE)
    with pytest.raises(OfficialKeyError, match=r"wrong passphrase for .*alice\.key"):
        load_official_key(out, b"not the passphrase")
    with pytest.raises(OfficialKeyError, match=r"alice\.key is encrypted: a passphrase is needed"):
        load_official_key(out)


def test_short_passphrase_refused(tmp_path: Path) -> None:
    with pytest.raises(OfficialKeyError, match="at least 8 bytes"):
        generate_official_key("Alice", tmp_path / "k", b"short")
    assert not (tmp_path / "k").exists()


def test_mode_is_0600_despite_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_official_key("Alice", tmp_path / "k", PASSPHRASE)
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


@pytest.mark.parametrize("existing", ["k", "k.pub"])
def test_refuses_to_overwrite(tmp_path: Path, existing: str) -> None:
    (tmp_path / existing).write_text("precious")
    with pytest.raises(OfficialKeyError, match="already exists"):
        generate_official_key("Alice", tmp_path / "k", PASSPHRASE)
    assert (tmp_path / existing).read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_load_refuses_group_or_other_access(tmp_path: Path, mode: int) -> None:
    out = tmp_path / "k"
    generate_official_key("Alice", out, PASSPHRASE)
    secret = out.read_text()
    out.chmod(mode)
    with pytest.raises(OfficialKeyError, match=f"mode {mode:04o}") as info:
        load_official_key(out)
    assert "PRIVATE KEY" not in str(info.value) and secret not in str(info.value)


def test_an_unencrypted_official_key_is_refused(tmp_path: Path) -> None:
    """Keys are encrypted at rest: a plain PEM copy (as the removed daemon-signing mode used) is refused."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = tmp_path / "plain.key"
    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    path.chmod(0o600)
    for passphrase in (None, b"", PASSPHRASE):
        with pytest.raises(OfficialKeyError, match=r"plain\.key is not encrypted; an official's key must be encrypted"):
            load_official_key(path, passphrase)


def test_load_rejects_non_key(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("not a key")
    path.chmod(0o600)
    with pytest.raises(OfficialKeyError, match="not a PEM PKCS#8"):
        load_official_key(path)


def test_cli_keygen_text_output_is_a_loadable_policy_entry(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "alice.key"
    from blindmatch.cli.errors import CliError

    with pytest.raises(CliError, match="--name") as refused:  # quotes: the policy would refuse the name
        run_cli(["official", "keygen", "--name", 'Alice "AC" Clerk', "--out", str(out), *passphrase_option(tmp_path)])
    assert refused.value.exit_code == 2 and not out.exists()
    assert run_cli(["official", "keygen", "--name", "Siobhán O'Clerk-Smith", "--out", str(out),
                    "--organisation", "County Court of Example", "--role", "Chief Clerk", *passphrase_option(tmp_path)]) == 0
    text = capsys.readouterr().out
    public = (tmp_path / "alice.key.pub").read_text().strip()
    assert f"public key: {public}" in text
    assert "PRIVATE KEY" not in text
    snippet = text[text.index("[[organisations"):]
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(
        '[organisations."County Court of Example"]\nsession_max_records = 1\nday_records = 1\n'
        "thirty_day_records = 1\nofficial_day_records = 1\nofficial_thirty_day_records = 1\n\n" + snippet
    )
    (entry,) = Policy.load(policy_file).officials("County Court of Example")
    assert entry.name == "Siobhán O'Clerk-Smith" and entry.role == "Chief Clerk"
    assert entry.public_key == base64.b64decode(public)
    assert entry.valid_from <= datetime.now(UTC) < entry.valid_until


def test_cli_keygen_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bob.key"
    assert run_cli(["official", "keygen", "--name", "Bob", "--out", str(out), "--json", *passphrase_option(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["public_key"] == (tmp_path / "bob.key.pub").read_text().strip()
    assert result["private_key_file"] == str(out) and result["public_key_file"] == str(out) + ".pub"
    assert tomllib.loads(result["policy_snippet"])["organisations"]["ORGANISATION"]["officials"][0]["name"] == "Bob"


def test_cli_keygen_refuses_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "k"
    out.write_text("precious")
    with pytest.raises(CliError, match="already exists") as info:
        run_cli(["official", "keygen", "--name", "Bob", "--out", str(out), *passphrase_option(tmp_path)])
    assert info.value.exit_code != 0
    assert out.read_text() == "precious"


def test_command_module_registered() -> None:
    from blindmatch.cli.main import COMMAND_MODULES

    assert "blindmatch.cli.official" in COMMAND_MODULES


def test_cli_keygen_writes_an_encrypted_key_and_needs_a_passphrase(tmp_path: Path) -> None:
    from blindmatch.cli.errors import CliError

    out = tmp_path / "carol.key"
    assert run_cli(["official", "keygen", "--name", "Carol", "--out", str(out), *passphrase_option(tmp_path)]) == 0
    assert load_official_key(out, PASSPHRASE).public_key().public_bytes_raw()
    loose = tmp_path / "loose"
    loose.write_bytes(PASSPHRASE)
    loose.chmod(0o644)
    with pytest.raises(CliError, match=r"passphrase file .*loose is accessible by group or others"):
        run_cli(["official", "keygen", "--name", "Dan", "--out", str(tmp_path / "dan.key"), "--passphrase-file", str(loose)])
