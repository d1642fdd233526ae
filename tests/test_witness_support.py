"""Shared set-up for the witness tests: a PKI, a witness key and config, logs, a live daemon.

Other ``test_witness_*`` and ``test_audit_witness*`` modules import from here; the
tests in this module check the set-up itself (config loading, key files).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from blindmatch.audit import AuditLog
from blindmatch.audit.cosignature import WitnessKey
from blindmatch.audit.log import KEY_NAME, PUB_NAME
from blindmatch.node.pki import init_pki, slug
from blindmatch.witness.client import WitnessClient, WitnessEndpoint
from blindmatch.witness.config import WitnessConfigError, load_witness_config
from blindmatch.witness.keys import create_witness_key, load_witness_key
from blindmatch.witness.service import WitnessDaemon

WITNESS_ORG = "Inspector General"
HOLDER_ORG = "Tax Authority"
OTHER_ORG = "Other Agency"
HOLDER_ORIGIN = "holder/Tax-Authority"
WITNESS_NAME = "witness.ig.example/w1"


@dataclass
class WitnessSetup:
    root: Path
    config_path: Path
    key: WitnessKey
    log_dir: Path  # the holder's working directory (its audit log is log_dir/audit)

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def endpoint(self, port: int, organisation: str = HOLDER_ORG) -> WitnessEndpoint:
        org_dir = self.pki / slug(organisation)
        return WitnessEndpoint(self.key, f"127.0.0.1:{port}", self.pki / "ca.crt", org_dir / "client.crt",
                               org_dir / "client.key", timeout_seconds=10.0)

    def open_log(self) -> AuditLog:
        return AuditLog.open(self.log_dir, HOLDER_ORIGIN)


def add_sessions(log: AuditLog, first: int, count: int) -> None:
    """Append ``count`` refused sessions (enough structure for the witness; no personal data)."""
    for i in range(first, first + count):
        log.append("session_refused", session_id=f"{i:032x}", peer="Benefits Office",
                   official="alice@benefits.example", reason="over_budget", status="RESOURCE_EXHAUSTED")


def write_config(root: Path, log_verifier_key: str, submitter: str = HOLDER_ORG, listen: str = "127.0.0.1:0") -> Path:
    path = root / "witness.toml"
    path.write_text(
        f'[witness]\nname = "{WITNESS_NAME}"\nkey_file = "witness.key"\nstate_dir = "state"\nlisten = "{listen}"\n'
        '[witness.tls]\ncert = "pki/inspector-general/server.crt"\nkey = "pki/inspector-general/server.key"\n'
        'client_ca = "pki/ca.crt"\n'
        f'[[witness.log]]\norigin = "{HOLDER_ORIGIN}"\nverifier_key = "{log_verifier_key}"\nsubmitter = "{submitter}"\n'
    )
    return path


def make_setup(root: Path) -> WitnessSetup:
    init_pki(root / "pki", [WITNESS_ORG, HOLDER_ORG, OTHER_ORG], ["127.0.0.1"])
    key = create_witness_key(root / "witness.key", WITNESS_NAME)
    log_dir = root / "holder"
    with AuditLog.open(log_dir, HOLDER_ORIGIN) as log:
        add_sessions(log, 0, 3)
    vkey = (log_dir / "audit" / PUB_NAME).read_text().strip()
    return WitnessSetup(root, write_config(root, vkey), key, log_dir)


@pytest.fixture
def env(tmp_path: Path) -> WitnessSetup:
    return make_setup(tmp_path)


@contextmanager
def running_witness(config_path: Path) -> Iterator[WitnessDaemon]:
    daemon = WitnessDaemon(load_witness_config(config_path))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop(0.5)


def submit(env: WitnessSetup, port: int, organisation: str = HOLDER_ORG) -> list:
    with env.open_log() as log:
        return WitnessClient([env.endpoint(port, organisation)]).submit(log, log.checkpoint())


def rewrite_log(log_dir: Path, keep: list[int], extra_sessions: int = 0) -> None:
    """What an operator holding the audit key can do: rebuild the log without some entries,
    re-signed with the same key, and put it in place of the original."""
    scratch = log_dir.parent / "rewrite"
    (scratch / "audit").mkdir(parents=True, mode=0o700)
    for name in (KEY_NAME, PUB_NAME):
        shutil.copy2(log_dir / "audit" / name, scratch / "audit" / name)
    with AuditLog.open(scratch, HOLDER_ORIGIN) as fake:
        for index in keep:
            add_sessions(fake, index, 1)
        add_sessions(fake, 1000, extra_sessions)
    for name in ("log.jsonl", "checkpoints"):
        os.replace(scratch / "audit" / name, log_dir / "audit" / name)
    shutil.rmtree(scratch)


def test_config_loads_and_names_the_log(env: WitnessSetup) -> None:
    config = load_witness_config(env.config_path)
    assert config.name == WITNESS_NAME
    assert config.log(HOLDER_ORIGIN) is not None and config.log(HOLDER_ORIGIN).submitter == HOLDER_ORG
    assert config.log("holder/other") is None


def test_config_rejects_unknown_keys_and_mismatched_origin(env: WitnessSetup) -> None:
    text = env.config_path.read_text()
    env.config_path.write_text(text.replace("state_dir", "statedir"))
    with pytest.raises(WitnessConfigError, match=r"witness\.statedir: unknown key"):
        load_witness_config(env.config_path)
    env.config_path.write_text(text.replace(f'origin = "{HOLDER_ORIGIN}"', 'origin = "holder/Elsewhere"'))
    with pytest.raises(WitnessConfigError, match=r"witness\.log\[0\]\.verifier_key: names"):
        load_witness_config(env.config_path)


def test_witness_key_is_created_0600_and_never_overwritten(env: WitnessSetup) -> None:
    assert (env.root / "witness.key").stat().st_mode & 0o777 == 0o600
    assert (env.root / "witness.key.pub").read_text().strip() == env.key.verifier_key()
    with pytest.raises(Exception, match="already exists"):
        create_witness_key(env.root / "witness.key", WITNESS_NAME)
    load_witness_key(env.root / "witness.key")


def test_cli_keygen_writes_the_key_pair_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from blindmatch.cli.main import main

    out = tmp_path / "keys" / "w.key"
    assert main(["witness", "keygen", "--name", "witness.example/cli", "--out", str(out)]) == 0
    vkey = (tmp_path / "keys" / "w.key.pub").read_text().strip()
    assert vkey.startswith("witness.example/cli+") and vkey in capsys.readouterr().out
    assert out.stat().st_mode & 0o777 == 0o600
    assert main(["witness", "keygen", "--name", "witness.example/cli", "--out", str(out)]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert main(["witness", "keygen", "--name", "has space", "--out", str(tmp_path / "x.key")]) == 1
