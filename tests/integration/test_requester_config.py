"""requester.toml is strict: errors name the file and key; the identity must match the certificate."""

from __future__ import annotations

from pathlib import Path

import pytest

from blindmatch.pilot.workspace import create_workspace
from blindmatch.requester.config import ConfigError, load_requester_config


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "requester.toml"
    path.write_text(text, encoding="utf-8")
    return path


BASE = """organisation = "Org"
[holder]
address = "127.0.0.1:1"
organisation = "Holder Org"
oprf_public_key = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"
audit_public_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
ca_cert = "ca.crt"
cert = "c.crt"
key = "c.key"
[official]
name = "Alice Clerk"
legal_basis = "Act s. 1"
[audit]
dir = "."
origin = "requester/org"
"""


def test_minimal_config_resolves_paths_and_defaults(tmp_path: Path) -> None:
    config = load_requester_config(_write(tmp_path, BASE))
    assert config.holder.cert == (tmp_path / "c.crt").resolve()
    assert config.service_target == f"unix:{tmp_path.resolve() / 'state' / 'requester.sock'}"
    assert config.matching.mode.value == "membership" and config.holder.name == "127.0.0.1:1"
    assert config.holder.batch_timeout_seconds == 120.0


def test_batch_timeout_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"holder\.batch_timeout_seconds"):
        load_requester_config(_write(tmp_path, BASE.replace('key = "c.key"', 'key = "c.key"\nbatch_timeout_seconds = 0')))


@pytest.mark.parametrize(
    ("extra", "where"),
    [
        ("[matching]\nbatchsize = 3\n", "matching.batchsize: unknown key"),
        ("[matching]\nmode = \"both\"\n", "matching.mode"),
        ("[service]\nlisten = \"0.0.0.0:7000\"\n", "service.listen"),
        ("[service]\nlisten = \"127.0.0.1:7444\"\n", "service.listen: '127.0.0.1:7444': a TCP job service would accept any local user"),
    ],
)
def test_errors_name_the_key(tmp_path: Path, extra: str, where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        load_requester_config(_write(tmp_path, BASE + extra))


def test_a_daemon_signing_key_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    """The removed ``[official] key_file`` (the daemon signing by itself) stops the start, and says how officials approve."""
    text = BASE.replace('name = "Alice Clerk"\n', 'name = "Alice Clerk"\nkey_file = "alice.key"\n')
    with pytest.raises(ConfigError) as refused:
        load_requester_config(_write(tmp_path, text))
    message = str(refused.value)
    assert str(tmp_path / "requester.toml") in message and "official.key_file is no longer supported" in message
    assert "Remove key_file" in message and "blindmatch official approve JOB" in message


def test_legal_basis_must_fit_the_audit_log(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"official\.legal_basis"):
        load_requester_config(_write(tmp_path, BASE.replace("Act s. 1", "x" * 300)))


def test_runner_refuses_an_organisation_other_than_the_certificates(tmp_path: Path) -> None:
    from blindmatch.requester.inputs import JobInputError
    from blindmatch.requester.runner import JobRunner

    ws = create_workspace(tmp_path / "ws", holder_records=10, queries=5)
    text = ws.requester_config.read_text().replace('organisation = "Example County Court"', 'organisation = "Someone Else"')
    ws.requester_config.write_text(text)
    config = load_requester_config(ws.requester_config)
    with pytest.raises(JobInputError, match="wrong_organisation"):
        JobRunner(config, None, None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("key", "value", "problem"), [
    ("oprf_public_key", '"00"', "must be 32 bytes"),
    ("oprf_public_key", '"zz"', "64 hexadecimal digits"),
    ("oprf_public_key", '"' + "ff" * 32 + '"', "not a valid public key"),
    ("audit_public_key", '"' + "00" * 32 + '"', "not a valid public key"),
])
def test_pinned_keys_must_be_valid(tmp_path: Path, key: str, value: str, problem: str) -> None:
    text = "\n".join(f"{key} = {value}" if line.startswith(f"{key} =") else line for line in BASE.splitlines())
    with pytest.raises(ConfigError, match=f"holder.{key}: .*{problem}"):
        load_requester_config(_write(tmp_path, text))


@pytest.mark.parametrize("key", ["organisation", "oprf_public_key", "audit_public_key"])
def test_the_holder_must_be_pinned(tmp_path: Path, key: str) -> None:
    text = "\n".join(line for line in BASE.splitlines() if not line.startswith(f"{key} =") or line.startswith("organisation = \"Org\""))
    with pytest.raises(ConfigError, match=f"holder.{key}: missing"):
        load_requester_config(_write(tmp_path, text))
