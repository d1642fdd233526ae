"""Shared fixtures for the holder daemon tests, plus tests of config, PKI and the index store.

A deployment is a complete holder directory made the way an operator would: PKI from
``pki init``, policy.toml, holder.toml, records CSV and an index built by
``build_index``. The Match helper drives a real ``RequesterSession`` over a raw stub.
"""

from __future__ import annotations

import base64
import csv
import os
import queue
import secrets
import stat
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.keys import sign_transcript
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.messages import Close
from blindmatch.core.outputs import Mode
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.node.config import ConfigError, HolderNodeConfig, load_holder_config
from blindmatch.node.holder_index import IndexBuildError, build_index
from blindmatch.node.holder_service import HolderDaemon
from blindmatch.node.holder_store import StoreError, load_key_file, open_indexes
from blindmatch.node.pki import PkiError, init_pki, organisation_of, slug
from blindmatch.node.wire import MODE_TO_PB, client_message_to_pb, server_message_from_pb
from blindmatch.normalize import default_schema
from blindmatch.policy import SessionRequest, sign_request
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc

HOLDER_ORG = "Example Tax Authority"
REQUESTER_ORG = "County Court of Example"
OTHER_ORG = "Other Agency"  # certified by the same CA, in the policy, not on the allow-list
OFFICIAL = "Jane Clerk"
CARDINALITY_OFFICIAL = "Sam Statistician"
TINY_OFFICIAL = "Tim Tiny"
OTHER_OFFICIAL = "Olga Other"
FIRST = ["Alice", "Bob", "Carol", "David", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy"]
LAST = ["Smith", "Jones", "Brown", "Miller", "Davis", "Garcia", "Wilson", "Moore", "Taylor", "Clark"]
STREETS = ["Main St", "Oak Ave", "Pine Rd", "Elm St", "Cedar Ln"]


def record(i: int) -> dict[str, str]:
    name = f"{FIRST[i % 10]} {LAST[(i // 10) % 10]}"
    return {"name": name, "address": f"{100 + i} {STREETS[i % 5]}, Springfield, IL 62701", "order_date": "2024-01-15"}


def write_records(path: Path, indices: range, bad_rows: int = 0) -> None:
    lines = ["name,address,order_date"]
    lines += [",".join(f'"{v}"' for v in record(i).values()) for i in indices]
    lines += ['"","1 Nowhere St, Springfield, IL 62701","2024-01-15"'] * bad_rows
    path.write_text("\n".join(lines) + "\n")


def requester_keys(indices: range) -> list[bytes]:
    schema = default_schema()
    return [schema.match_keys(record(i), side="requester")[0][1] for i in indices]


def _b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@dataclass
class Deployment:
    root: Path
    config_path: Path
    pki: Path
    officials: dict[str, Ed25519PrivateKey]
    requester_audit_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def config(self) -> HolderNodeConfig:
        return load_holder_config(self.config_path)

    def credentials(self, organisation: str = REQUESTER_ORG, pki: Path | None = None) -> grpc.ChannelCredentials:
        base = pki or self.pki
        org_dir = base / slug(organisation)
        return grpc.ssl_channel_credentials(
            root_certificates=(self.pki / "ca.crt").read_bytes(),
            private_key=(org_dir / "client.key").read_bytes(),
            certificate_chain=(org_dir / "client.crt").read_bytes(),
        )


def make_deployment(root: Path, records: int = 200, limits: str = "") -> Deployment:
    pki = root / "pki"
    init_pki(pki, [HOLDER_ORG, REQUESTER_ORG, OTHER_ORG], ["localhost", "127.0.0.1"])
    officials = {name: Ed25519PrivateKey.generate() for name in (OFFICIAL, CARDINALITY_OFFICIAL, TINY_OFFICIAL, OTHER_OFFICIAL)}
    valid = 'valid_from = 2020-01-01T00:00:00Z\nvalid_until = 2099-01-01T00:00:00Z\n'
    org_limits = (
        "session_max_records = 5000\nday_records = 100000\nthirty_day_records = 1000000\n"
        "official_day_records = 50000\nofficial_thirty_day_records = 500000\n"
    )

    def official(org: str, name: str, modes: str, extra: str = "") -> str:
        return (f'[[organisations."{org}".officials]]\nname = "{name}"\nrole = "clerk"\n'
                f'public_key = "{_b64(officials[name])}"\n{valid}modes = {modes}\n{extra}')

    (root / "policy.toml").write_text(
        f'[organisations."{REQUESTER_ORG}"]\n{org_limits}'
        + official(REQUESTER_ORG, OFFICIAL, '["membership"]')
        + official(REQUESTER_ORG, CARDINALITY_OFFICIAL, '["membership", "cardinality"]')
        + official(REQUESTER_ORG, TINY_OFFICIAL, '["membership"]', "day_records = 5\n")
        + f'[organisations."{OTHER_ORG}"]\n{org_limits}'
        + official(OTHER_ORG, OTHER_OFFICIAL, '["membership"]')
    )
    holder_dir = f"pki/{slug(HOLDER_ORG)}"
    (root / "holder.toml").write_text(textwrap.dedent(f"""\
        [holder]
        organisation = "{HOLDER_ORG}"
        listen = "127.0.0.1:0"
        key_file = "oprf.key"
        index_dir = "index"
        policy = "policy.toml"
        budget_db = "state/budget.sqlite3"
        audit_dir = "."
        [holder.limits]
        max_batch = 64
        max_session_elements = 4096
        max_message_bytes = 16384
        index_chunk_bytes = 1024
        max_concurrent_sessions = 8
        shutdown_grace_seconds = 20
        {limits}
        [holder.tls]
        cert = "{holder_dir}/server.crt"
        key = "{holder_dir}/server.key"
        client_ca = "pki/ca.crt"
        allowed_organisations = ["{REQUESTER_ORG}"]
        """))
    write_records(root / "records.csv", range(records), bad_rows=2)
    dep = Deployment(root, root / "holder.toml", pki, officials)
    build_index(root / "records.csv", dep.config, progress=False)
    return dep


@pytest.fixture(scope="module")
def engine() -> Iterator[BatchEngine]:
    eng = BatchEngine(2)
    yield eng
    eng.close()


@contextmanager
def running(dep: Deployment, engine: BatchEngine) -> Iterator[HolderDaemon]:
    daemon = HolderDaemon.from_config(dep.config, engine=engine)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop(0)


@contextmanager
def channel(dep: Deployment, port: int, organisation: str = REQUESTER_ORG, pki: Path | None = None) -> Iterator[grpc.Channel]:
    with grpc.secure_channel(f"127.0.0.1:{port}", dep.credentials(organisation, pki)) as ch:
        yield ch


def download(stub: pb_grpc.HolderStub, kind: Mode) -> EncryptedIndex:
    info = stub.GetInfo(pb.GetInfoRequest())
    digest = next(i.digest for i in info.indexes if i.kind == MODE_TO_PB[kind])
    data = b"".join(c.data for c in stub.DownloadIndex(pb.DownloadIndexRequest(kind=MODE_TO_PB[kind], digest=digest)))
    return EncryptedIndex.parse(data)


def sign_for(dep: Deployment, *, session_id: bytes, key_id: bytes, index_digest: bytes, commitment: bytes,
             count: int, mode: Mode, official: str = OFFICIAL, signer: Ed25519PrivateKey | None = None,
             organisation: str = REQUESTER_ORG, nonce: bytes | None = None, issued_at: datetime | None = None,
             lifetime: timedelta = timedelta(minutes=30)) -> bytes:
    issued = issued_at or datetime.now(UTC).replace(microsecond=0)
    request = SessionRequest(
        organisation=organisation, official=official, mode=mode.value, record_count=count, held_back=0,
        legal_basis="Court order 2024-17, sec. 5", nonce=nonce or secrets.token_bytes(16), issued_at=issued,
        expires_at=issued + lifetime, session_id=session_id, key_id=key_id, index_digest=index_digest,
        blinded_commitment=commitment,
    )
    return sign_request(request, signer or dep.officials[official])


class MatchClient:
    """A bidi Match call fed from a queue, so a test decides when each message goes out."""

    def __init__(self, stub: pb_grpc.HolderStub) -> None:
        self._queue: queue.Queue[pb.MatchClientMessage | None] = queue.Queue()
        self.responses = stub.Match(iter(self._queue.get, None))

    def send(self, message: pb.MatchClientMessage) -> None:
        self._queue.put(message)

    def done(self) -> None:
        self._queue.put(None)


def requester_session(index: EncryptedIndex, keys: list[bytes], mode: Mode, engine: BatchEngine,
                      batch_size: int = 64) -> RequesterSession:
    return RequesterSession(keys, mode, index, secrets.token_bytes(16), batch_size, engine)


def run_match(dep: Deployment, stub: pb_grpc.HolderStub, session: RequesterSession, authorization: bytes,
              on_accept: object = None, announced_key: bytes | None = None) -> pb.Closed:
    """Drive ``session`` to the end; returns the holder's Closed (its signature is checked by callers).

    ``announced_key`` replaces the audit key sent in Close (to test a signature that does not verify).
    """
    client = MatchClient(stub)
    client.send(client_message_to_pb(session.hello(authorization)))
    closed = None
    try:
        for raw in client.responses:
            message = server_message_from_pb(raw)
            if raw.WhichOneof("message") == "closed":
                session.receive(message)
                closed = raw.closed
                client.done()
                continue
            for out in session.receive(message):
                assert isinstance(out, Close)
                signature = sign_transcript(dep.requester_audit_key, out.session_id, out.transcript_hash)
                raw_key = announced_key or dep.requester_audit_key.public_key().public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                client.send(client_message_to_pb(Close(out.session_id, out.transcript_hash, signature, raw_key)))
            if raw.WhichOneof("message") == "accept":
                if callable(on_accept):
                    on_accept()
                while (batch := session.next_batch()) is not None:
                    client.send(client_message_to_pb(batch))
    finally:
        client.done()
    assert closed is not None
    return closed


def signed_session(dep: Deployment, stub: pb_grpc.HolderStub, engine: BatchEngine, indices: range, mode: Mode,
                   official: str = OFFICIAL, **overrides: object) -> tuple[RequesterSession, bytes]:
    index = download(stub, mode)
    session = requester_session(index, requester_keys(indices), mode, engine)
    envelope = sign_for(dep, session_id=session.session_id, key_id=index.header.key_id, index_digest=index.digest,
                        commitment=session.blinded_commitment, count=session.element_count, mode=mode,
                        official=official, **overrides)  # type: ignore[arg-type]
    return session, envelope


# --- tests of config, PKI and the store ----------------------------------------------------


@pytest.mark.timeout(30)
def test_pki_init_files_modes_and_identity(tmp_path: Path) -> None:
    made = init_pki(tmp_path / "pki", ["Org One", "Org Two"], ["localhost", "127.0.0.1"])
    assert [m.directory.name for m in made] == ["org-one", "org-two"]
    for path in [tmp_path / "pki" / "ca.key", made[0].client_key, made[0].server_key]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert organisation_of(made[1].client_cert.read_bytes()) == "Org Two"
    with pytest.raises(PkiError, match="already exists"):
        init_pki(tmp_path / "pki", ["Org One"], ["localhost"])
    init_pki(tmp_path / "pki", ["Org Three"], ["localhost"])  # the CA is reused to add organisations
    assert (tmp_path / "pki" / "org-three" / "server.crt").exists()


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("max_batch = 64", "max_bach = 64"), r"holder.limits.max_bach: unknown key"),
        (lambda t: t.replace('policy = "policy.toml"\n', ""), r"holder.policy: missing"),
        (lambda t: t.replace("max_batch = 64", "max_batch = 100000"), r"holder.limits.max_batch: .*max_message_bytes"),
        (lambda t: t.replace('allowed_organisations = ["County Court of Example"]', "allowed_organisations = []"),
         r"holder.tls.allowed_organisations"),
        (lambda t: t.replace('listen = "127.0.0.1:0"', 'listen = "nowhere"'), r"holder.listen"),
        # Allowed organisations are written to the audit log as peers: the log's identity rule.
        (lambda t: t.replace('["County Court of Example"]', '["County Court of Example", "Two  Spaces"]'),
         r"holder.tls.allowed_organisations\[1\]: must be an identity"),
        (lambda t: t.replace('["County Court of Example"]', '["Court\\nof Example"]'),
         r"holder.tls.allowed_organisations\[0\]: must be an identity"),
    ],
)
def test_config_errors_name_the_key(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.toml"
    good.write_text(
        '[holder]\norganisation = "H"\nlisten = "127.0.0.1:0"\npolicy = "policy.toml"\n'
        "[holder.limits]\nmax_batch = 64\n"
        '[holder.tls]\ncert = "a"\nkey = "b"\nclient_ca = "c"\nallowed_organisations = ["County Court of Example"]\n'
    )
    config = load_holder_config(good)
    assert config.policy == tmp_path / "policy.toml" and config.tls.cert == tmp_path / "a"
    bad = tmp_path / "bad.toml"
    bad.write_text(edit(good.read_text()))
    with pytest.raises(ConfigError, match=message):
        load_holder_config(bad)


@pytest.mark.timeout(30)
def test_non_utf8_config_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "holder.toml"
    path.write_bytes(b'[holder]\norganisation = "Caf\xe9"\n')
    with pytest.raises(ConfigError, match=r"holder.toml is not valid TOML: not UTF-8 text \(invalid byte at offset 28\)"):
        load_holder_config(path)


@pytest.mark.timeout(60)
def test_index_field_over_csv_limit_names_the_row(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, records=5)
    huge = "9" * (csv.field_size_limit() + 1)
    records = tmp_path / "huge.csv"
    write_records(records, range(2))
    records.write_text(records.read_text() + f'"Zed Zulu","{huge}","2024-01-15"\n')
    with pytest.raises(IndexBuildError) as info:
        build_index(records, dep.config, progress=False)
    message = str(info.value)
    assert message == f"{records}: row 4: a field exceeds the CSV field size limit ({csv.field_size_limit()} characters)"
    assert "Zed" not in message and "999" not in message


@pytest.mark.timeout(60)
def test_index_build_key_file_and_rejects(tmp_path: Path) -> None:
    dep = make_deployment(tmp_path, records=50)
    config = dep.config
    assert stat.S_IMODE(config.key_file.stat().st_mode) == 0o600
    rejects = (config.index_dir / "rejects.csv").read_text().splitlines()
    assert rejects == ["row,field,reason", "52,name,missing", "53,name,missing"]
    opened = open_indexes(config.index_dir)
    try:
        assert opened.manifest.key_id == load_key_file(config.key_file).key_id
        assert opened.manifest.records == 50
        entries = sum(len(default_schema().match_keys(record(i), "holder")) for i in range(50))
        assert {f.entries for f in opened.manifest.files.values()} == {entries}  # every tier key of every record
    finally:
        opened.close()
    os.chmod(config.key_file, 0o640)
    with pytest.raises(StoreError, match="group or others") as info:
        load_key_file(config.key_file)
    assert config.key_file.read_text().strip() not in str(info.value)  # the secret never appears in errors


@pytest.mark.timeout(60)
def test_crash_before_manifest_rename_keeps_old_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dep = make_deployment(tmp_path, records=30)
    index_dir = dep.config.index_dir
    before = open_indexes(index_dir)
    before.close()
    real_replace = os.replace

    def crash_on_manifest(src: object, dst: object) -> None:
        if Path(str(dst)).name == "index.json":
            raise KeyboardInterrupt("simulated crash")
        real_replace(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", crash_on_manifest)
    write_records(tmp_path / "more.csv", range(60))
    with pytest.raises(KeyboardInterrupt):
        build_index(tmp_path / "more.csv", dep.config, progress=False)
    monkeypatch.undo()
    after = open_indexes(index_dir)  # verifies every file against the manifest's digests
    try:
        assert {k: f.digest for k, f in after.manifest.files.items()} == {k: f.digest for k, f in before.manifest.files.items()}
    finally:
        after.close()
    manifest = index_dir / "index.json"
    manifest.write_text(manifest.read_text().replace('"digest": "', '"digest": "00', 1))
    with pytest.raises(StoreError, match="does not match its digest"):
        open_indexes(index_dir)
