"""The requester talks only to the pinned holder, and uses only answers proven under its key.

Second holders are started from the same CA: one with another organisation's server
certificate, one with the right certificate but another OPRF key, one with another audit
key. The requester refuses each, naming what differed. A holder that announces the pinned
key but evaluates with another fails the first batch's proof (membership) or the
session's shuffle proof (cardinality): the session stops with ``proof_invalid`` and both
audit logs say so.
"""

from __future__ import annotations

import json
import secrets
import time
import tomllib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers.holder_deployment import (
    CARDINALITY_OFFICIAL,
    HOLDER_ORG,
    OFFICIAL,
    OTHER_ORG,
    REQUESTER_ORG,
    Deployment,
    make_deployment,
    requester_keys,
)

from blindmatch.audit import AuditLog
from blindmatch.cli.main import main
from blindmatch.core.errors import ProtocolError
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.keys import HolderKey
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.runtime import HolderRuntime
from blindmatch.holder.store import load_key_file
from blindmatch.policy import SessionRequest, sign_request
from blindmatch.requester.config import HolderEndpoint
from blindmatch.requester.holder_client import HolderClient, HolderNotPinned
from blindmatch.requester.session import run_session
from blindmatch.transport.pki import slug
from blindmatch.transport.wire import MODE_TO_PB
from blindmatch.vocabulary import Mode, Reason


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    return make_deployment(tmp_path_factory.mktemp("pinned"), records=60)


def _endpoint(dep: Deployment, port: int, audit_key: bytes, **overrides: object) -> HolderEndpoint:
    client_dir = dep.pki / slug(REQUESTER_ORG)
    endpoint = HolderEndpoint(
        address=f"127.0.0.1:{port}", name=HOLDER_ORG, organisation=HOLDER_ORG,
        oprf_public_key=load_key_file(dep.config.key_file).public_key, audit_public_key=audit_key,
        ca_cert=dep.pki / "ca.crt", cert=client_dir / "client.crt", key=client_dir / "client.key",
        server_name=None, retry_seconds=1.0, batch_timeout_seconds=30.0,
    )
    return replace(endpoint, **overrides)  # type: ignore[arg-type]


def _second_holder(dep: Deployment, name: str, *, cert_org: str = HOLDER_ORG, own_key: bool = False) -> Deployment:
    """Another holder.toml in the same deployment: its own audit log and budget, maybe its own key and certificate."""
    text = dep.config_path.read_text()
    text = text.replace('audit_dir = "."', f'audit_dir = "{name}"')
    text = text.replace('budget_db = "state/budget.sqlite3"', f'budget_db = "{name}/budget.sqlite3"')
    text = text.replace(f"pki/{slug(HOLDER_ORG)}/server", f"pki/{slug(cert_org)}/server")
    if own_key:
        text = text.replace('key_file = "oprf.key"', f'key_file = "{name}/oprf.key"')
        text = text.replace('index_dir = "index"', f'index_dir = "{name}/index"')
    (dep.root / name).mkdir(exist_ok=True)
    path = dep.root / f"{name}.toml"
    path.write_text(text)
    second = replace(dep, config_path=path)
    if own_key:
        build_index(dep.root / "records.csv", load_holder_config(path), progress=False)
    return second


@pytest.fixture(scope="module")
def genuine(deployment: Deployment, engine: BatchEngine) -> Iterator[tuple[int, bytes]]:
    with deployment.running(engine) as daemon:
        yield daemon.port, daemon.runtime.audit.public_key


def test_the_pinned_holder_is_accepted(deployment: Deployment, genuine: tuple[int, bytes]) -> None:
    port, audit_key = genuine
    with HolderClient(_endpoint(deployment, port, audit_key)) as client:
        info = client.info()
    assert info.organisation == HOLDER_ORG and len(info.indexes) == 2


def test_a_holder_with_another_organisations_certificate_is_refused(
        deployment: Deployment, genuine: tuple[int, bytes], engine: BatchEngine) -> None:
    _port, audit_key = genuine
    impostor = _second_holder(deployment, "impostor", cert_org=OTHER_ORG)
    with impostor.running(engine) as daemon, HolderClient(_endpoint(deployment, daemon.port, audit_key)) as client:
        with pytest.raises(HolderNotPinned, match=f"organisation '{OTHER_ORG}', not of the pinned holder") as err:
            client.info()
        with pytest.raises(HolderNotPinned):  # nor may it serve an index or a session
            client.download_index(Mode.MEMBERSHIP, b"\x00" * 32, deployment.root / "never.bmidx")
    assert err.value.reason is Reason.HOLDER_NOT_PINNED
    assert not (deployment.root / "never.bmidx.part").exists()


def test_a_holder_with_another_oprf_key_is_refused(
        deployment: Deployment, genuine: tuple[int, bytes], engine: BatchEngine) -> None:
    del genuine  # the genuine holder runs beside the rekeyed one
    rekeyed = _second_holder(deployment, "rekeyed", own_key=True)
    with rekeyed.running(engine) as daemon:
        endpoint = _endpoint(deployment, daemon.port, daemon.runtime.audit.public_key)
        with HolderClient(endpoint) as client, pytest.raises(HolderNotPinned, match=r"OPRF public key .* is not the pinned"):
            client.info()


def test_a_holder_with_another_audit_key_is_refused(
        deployment: Deployment, genuine: tuple[int, bytes], engine: BatchEngine) -> None:
    _port, audit_key = genuine
    other_log = _second_holder(deployment, "other-audit")
    with other_log.running(engine) as daemon, HolderClient(_endpoint(deployment, daemon.port, audit_key)) as client:
        assert daemon.runtime.audit.public_key != audit_key
        with pytest.raises(HolderNotPinned, match=r"audit key .* is not the pinned"):
            client.info()


@pytest.mark.parametrize(("mode", "official", "said"), [
    (Mode.MEMBERSHIP, OFFICIAL, "evaluated batch 0"),
    (Mode.CARDINALITY, CARDINALITY_OFFICIAL, "the holder did not evaluate every element it was sent, once, with the pinned key"),
])
def test_a_holder_evaluating_with_another_key_fails_the_proof_and_both_logs_say_so(
        deployment: Deployment, genuine: tuple[int, bytes], engine: BatchEngine,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mode: Mode, official: str, said: str) -> None:
    """It announces (and its index names) the pinned key, but evaluates with another one."""
    port, audit_key = genuine
    honest = HolderRuntime.holder_config
    other = HolderKey.generate()
    monkeypatch.setattr(HolderRuntime, "holder_config",
                        lambda self, org: replace(honest(self, org), sk=other.sk))
    endpoint = _endpoint(deployment, port, audit_key)
    with HolderClient(endpoint) as client, AuditLog.open(tmp_path, "requester/test") as audit:
        info = client.info()
        digest = next(i.digest for i in info.indexes if i.kind == MODE_TO_PB[mode])
        path = client.download_index(mode, digest, tmp_path / "m.bmidx")
        index = EncryptedIndex.parse(path.read_bytes())
        session = RequesterSession(requester_keys(range(10)), mode, index, secrets.token_bytes(16), 8,
                                   engine, organisation=REQUESTER_ORG, public_key=endpoint.oprf_public_key)
        issued = datetime.now(UTC).replace(microsecond=0)
        request = SessionRequest(
            organisation=REQUESTER_ORG, official=official, mode=mode.value, record_count=session.element_count,
            held_back=0, legal_basis="Court order 2024-17, sec. 5", nonce=secrets.token_bytes(16), issued_at=issued,
            expires_at=issued + timedelta(minutes=30), session_id=session.session_id, key_id=info.key_id,
            index_digest=index.digest, blinded_commitment=session.blinded_commitment)
        envelope = sign_request(request, deployment.officials[official])
        with pytest.raises(ProtocolError) as err:
            run_session(client, audit, session, request, envelope, HOLDER_ORG, 2, info.audit_public_key,
                        lambda _batch: None, [deployment.officials[official].public_key().public_bytes_raw()])
    assert err.value.code is Reason.PROOF_INVALID and said in err.value.message
    assert not session.matched.any() and session.match_count == 0
    mine = [json.loads(line) for line in (tmp_path / "audit" / "log.jsonl").read_text().splitlines()]
    assert [(e["event"], e.get("reason")) for e in mine if e["event"].startswith("session_")][-1] == (
        "session_failed", "proof_invalid")
    assert not [e for e in mine if e["event"] == "batch_received"]  # nothing of the batch was used
    deadline = time.monotonic() + 10
    while True:
        theirs = [json.loads(line) for line in (deployment.root / "audit" / "log.jsonl").read_text().splitlines()]
        failed = [e for e in theirs if e["event"] == "session_failed" and e["session_id"] == session.session_id.hex()]
        if failed or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert failed and failed[0]["reason"] == "proof_invalid"


def test_holder_pins_prints_what_the_requester_pins(deployment: Deployment, genuine: tuple[int, bytes],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    port, audit_key = genuine
    assert main(["holder", "pins", "--config", str(deployment.config_path)]) == 0
    pins = tomllib.loads(capsys.readouterr().out)
    expected = _endpoint(deployment, port, audit_key)
    assert pins == {"organisation": expected.organisation, "oprf_public_key": expected.oprf_public_key.hex(),
                    "audit_public_key": expected.audit_public_key.hex()}
