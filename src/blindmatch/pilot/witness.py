"""The pilot's witness: an inspector general that cosigns both organisations' audit logs.

``install_witness`` adds it to a workspace: its certificate from the same CA, its own
signing key (0600), witness.toml naming both logs, ``[[holder.witness]]`` in holder.toml
and ``[[audit.witness]]`` in requester.toml, so both sides submit their checkpoints.
``submit_requester_checkpoint`` is what the requester's operator does after the pilot
wrote to its log outside ``requester match`` (the refusal probes); ``wait_until_cosigned``
watches a live daemon's log until its latest checkpoint is cosigned. ``review`` is what a
reviewer runs afterwards, from each side alone: ``witness export`` for each log, then
``audit verify --witness --witnessed`` on each log and ``audit reconcile`` on the pair.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from blindmatch.audit import AuditLog, verify_log
from blindmatch.audit.cosignature import WitnessKey, parse_witness_verifier_key
from blindmatch.audit.keys import load_or_create_signing_key
from blindmatch.audit.log import AUDIT_SUBDIR, KEY_NAME, PUB_NAME
from blindmatch.keyfile import public_key_path
from blindmatch.pilot.processes import blindmatch_command
from blindmatch.pilot.workspace import HOLDER_ORG, REQUESTER_ORG, Workspace, free_port, install_service_pki
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.witnessing import WitnessReport, submit_checkpoint
from blindmatch.witness.keys import create_witness_key

WITNESS_ORG = "Example Inspector General"
WITNESS_NAME = "witness.ig.example/demo"
SIDES = ("holder", "requester")
COSIGN_WAIT_SECONDS = 30.0


def witness_config_path(workspace: Workspace) -> Path:
    return workspace.root / "witness" / "witness.toml"


def witness_key_path(workspace: Workspace) -> Path:
    """The witness's public verifier key, which reviewers pass to ``audit verify --witness``."""
    return public_key_path(workspace.root / "witness" / "witness.key")


def _audit_dir(workspace: Workspace, side: str) -> Path:
    return (workspace.holder_dir if side == "holder" else workspace.requester_dir) / AUDIT_SUBDIR


def _log_verifier_keys(workspace: Workspace) -> dict[str, str]:
    """Both logs' verifier keys; the requester's audit key is created now, as the holder's was."""
    requester = load_requester_config(workspace.requester_config)
    audit_dir = requester.audit_dir / AUDIT_SUBDIR
    audit_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    load_or_create_signing_key(audit_dir / KEY_NAME, audit_dir / PUB_NAME, requester.audit_origin)
    return {side: (_audit_dir(workspace, side) / PUB_NAME).read_text().strip() for side in SIDES}


def install_witness(workspace: Workspace) -> Path:
    """Add the witness to ``workspace`` (once); returns witness.toml."""
    config = witness_config_path(workspace)
    if config.exists():
        return config
    witness = config.parent
    install_service_pki(workspace, witness, WITNESS_ORG, "witness")
    key = create_witness_key(witness / "witness.key", WITNESS_NAME)
    logs = _log_verifier_keys(workspace)
    address = f"127.0.0.1:{free_port()}"
    entries = "".join(
        f'\n[[witness.log]]\norigin = "{logs[side].split("+", 1)[0]}"\nverifier_key = "{logs[side]}"\n'
        f'submitter = "{org}"\n' for side, org in zip(SIDES, (HOLDER_ORG, REQUESTER_ORG), strict=True))
    config.write_text(
        f'[witness]\nname = "{WITNESS_NAME}"\nkey_file = "witness.key"\nstate_dir = "state"\nlisten = "{address}"\n\n'
        '[witness.tls]\ncert = "pki/server.crt"\nkey = "pki/server.key"\nclient_ca = "pki/ca.crt"\n' + entries)
    endpoint = f'verifier_key = "{key.verifier_key()}"\naddress = "{address}"\nca = "pki/ca.crt"\n'
    with workspace.holder_config.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[[holder.witness]]\n{endpoint}cert = "pki/witness-client.crt"\nkey = "pki/witness-client.key"\n')
    with workspace.requester_config.open("a", encoding="utf-8") as handle:
        handle.write(f'\n[[audit.witness]]\n{endpoint}cert = "pki/client.crt"\nkey = "pki/client.key"\n')
    return config


def submit_requester_checkpoint(workspace: Workspace) -> WitnessReport:
    """Submit the requester log's newest checkpoint, as ``requester match`` does when it ends."""
    config = load_requester_config(workspace.requester_config)
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        return submit_checkpoint(audit, config.witnesses)


def cosigned_sizes(directory: Path, key: WitnessKey) -> tuple[int, int]:
    """(the log's latest checkpoint size, the largest size ``key`` cosigned); (-1, -1) while the
    log does not verify, e.g. a line being written by the daemon."""
    result = verify_log(directory, witnesses=[key])
    if not result.ok or result.latest is None:
        return -1, -1
    return result.latest.size, result.witnesses[0].size


def wait_until_cosigned(directory: Path, key: WitnessKey, seconds: float = COSIGN_WAIT_SECONDS) -> int:
    """Wait until the witness cosigned the latest checkpoint of a live daemon's log; that size, or 0 on timeout.

    The daemon submits in the background (``audit.keeper``) about a second after it checkpoints.
    """
    deadline = time.monotonic() + seconds
    while True:
        latest, cosigned = cosigned_sizes(directory, key)
        if latest > 0 and latest == cosigned:
            return cosigned
        if time.monotonic() > deadline:
            return 0
        time.sleep(0.2)


def witness_key(workspace: Workspace) -> WitnessKey:
    return parse_witness_verifier_key(witness_key_path(workspace).read_text())


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(blindmatch_command(*args), capture_output=True, text=True)


def _failed(done: subprocess.CompletedProcess[str]) -> str:
    return "failed: " + (done.stderr.strip() or done.stdout.strip())[-500:]


def _verify_side(workspace: Workspace, side: str) -> tuple[str, int]:
    """``witness export`` then ``audit verify --witness --witnessed`` for one log: (status, cosigned size).

    "ok" also requires the witness to have cosigned the log's latest checkpoint, so the
    whole log, not a prefix of it, is vouched for.
    """
    directory = _audit_dir(workspace, side).parent
    origin = (_audit_dir(workspace, side) / PUB_NAME).read_text().split("+", 1)[0]
    exported = _run("witness", "export", "--config", str(witness_config_path(workspace)), origin)
    if exported.returncode != 0:
        return _failed(exported), 0
    note = workspace.root / "witness" / f"exported-{side}.note"
    note.write_text(exported.stdout)
    done = _run("audit", "verify", str(directory), "--witness", str(witness_key_path(workspace)),
                "--witnessed", str(note), "--json")
    if done.returncode != 0:
        return _failed(done), 0
    result = json.loads(done.stdout)
    cosigned = max(status["size"] for status in result["witnesses"])
    latest = result["size"] - result["unsigned_tail"]
    if cosigned != latest:
        return f"failed: the witness cosigned size {cosigned}, the latest checkpoint covers {latest}", cosigned
    return "ok", cosigned


def review(workspace: Workspace) -> dict[str, object]:
    """What a reviewer runs once the daemons stopped; the demo's ``witness`` summary."""
    with ThreadPoolExecutor(3) as pool:  # three independent reviews, each a few commands: not one after another
        sides = [pool.submit(_verify_side, workspace, side) for side in SIDES]
        reconciling = pool.submit(_run, "audit", "reconcile", str(workspace.holder_dir), str(workspace.requester_dir))
        (holder, holder_size), (requester, requester_size) = (side.result() for side in sides)
        reconciled = reconciling.result()
    return {
        "name": WITNESS_NAME,
        "holder_cosigned_size": holder_size,
        "requester_cosigned_size": requester_size,
        "verify_holder": holder,
        "verify_requester": requester,
        "reconcile": "ok" if reconciled.returncode == 0 else _failed(reconciled),
    }
