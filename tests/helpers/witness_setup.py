"""Shared set-up for the witness tests: a PKI, a witness key and config, logs, a live daemon."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.audit.cosignature import WitnessKey
from blindmatch.audit.log import KEY_NAME, PUB_NAME
from blindmatch.transport.pki import init_pki, slug
from blindmatch.witness.client import WitnessClient, WitnessEndpoint
from blindmatch.witness.config import load_witness_config
from blindmatch.witness.keys import create_witness_key
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
