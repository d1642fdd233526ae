"""Shared helpers for the holder daemon tests: a complete deployment, a raw Match client, signed sessions.

A deployment is a complete holder directory made the way an operator would: PKI from
``pki init``, policy.toml, holder.toml, records CSV and an index built by
``build_index``. The Match helper drives a real ``RequesterSession`` over a raw stub.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.checkpoint import sign_checkpoint
from blindmatch.audit.keys import sign_transcript
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.messages import Close
from blindmatch.core.pacing import pace
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import HolderNodeConfig, load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.service import HolderDaemon
from blindmatch.normalize import default_schema
from blindmatch.policy import SessionRequest, sign_request
from blindmatch.transport.pki import init_pki, slug
from blindmatch.transport.wire import MODE_TO_PB, client_message_to_pb, server_message_from_pb
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode
from helpers.config_texts import HOLDER_ORG, REQUESTER_ORG, holder_toml

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
    """A holder directory, and what the tests do with it: run its daemon, connect, sign, match."""

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

    @contextmanager
    def running(self, engine: BatchEngine) -> Iterator[HolderDaemon]:
        daemon = HolderDaemon.from_config(self.config, engine=engine)
        daemon.start()
        try:
            yield daemon
        finally:
            daemon.stop(0)

    def clocked(self, engine: BatchEngine, now: list[datetime]) -> HolderDaemon:
        """A daemon, not started, whose clock reads ``now[0]``: the test moves time by setting it."""
        return HolderDaemon.from_config(self.config, engine=engine, clock=lambda: now[0])

    @contextmanager
    def clocked_daemon(self, engine: BatchEngine, now: list[datetime], daemon: HolderDaemon | None = None,
                       ) -> Iterator[tuple[HolderDaemon, pb_grpc.HolderStub]]:
        """A started clocked daemon on an epoch schedule (it has a rotator) and a stub on it, stopped
        at the end. A test that checks something before the start passes ``clocked``'s daemon."""
        daemon = daemon or self.clocked(engine, now)
        daemon.start()
        try:
            assert daemon.rotator is not None
            with self.channel(daemon.port) as ch:
                yield daemon, pb_grpc.HolderStub(ch)
        finally:
            daemon.stop(0)

    @contextmanager
    def channel(self, port: int, organisation: str = REQUESTER_ORG, pki: Path | None = None) -> Iterator[grpc.Channel]:
        with grpc.secure_channel(f"127.0.0.1:{port}", self.credentials(organisation, pki)) as ch:
            yield ch

    def sign_for(self, *, session_id: bytes, key_id: bytes, index_digest: bytes, commitment: bytes,
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
        return sign_request(request, signer or self.officials[official])

    def requester_checkpoint(self) -> bytes:
        """A checkpoint note signed by the test requester's audit key, as a real requester's Close carries."""
        empty_root = hashlib.sha256(b"").digest()
        return sign_checkpoint(self.requester_audit_key, "test-requester", 0, empty_root,
                               "2026-01-01T00:00:00.000000Z").note.encode()

    def run_match(self, stub: pb_grpc.HolderStub, session: RequesterSession, authorization: bytes,
                  on_accept: object = None, announced_key: bytes | None = None,
                  checkpoint_note: bytes | None = None) -> pb.Closed:
        """Drive ``session`` to the end; returns the holder's Closed (its signature is checked by callers).

        ``announced_key`` replaces the audit key sent in Close (to test a signature that does not verify),
        ``checkpoint_note`` the requester's checkpoint it carries.
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
                    signature = sign_transcript(self.requester_audit_key, out.session_id, out.transcript_hash)
                    raw_key = announced_key or self.requester_audit_key.public_key().public_bytes(
                        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
                    client.send(client_message_to_pb(Close(out.session_id, out.transcript_hash, signature, raw_key,
                                                           self.requester_checkpoint() if checkpoint_note is None
                                                           else checkpoint_note)))
                if raw.WhichOneof("message") == "accept":
                    if callable(on_accept):
                        on_accept()
                    for batch in pace(session, window=len(session.batch_digests)):  # all of them at once
                        client.send(client_message_to_pb(batch))
        finally:
            client.done()
        assert closed is not None
        return closed

    def signed_session(self, stub: pb_grpc.HolderStub, engine: BatchEngine, indices: range, mode: Mode,
                       official: str = OFFICIAL, **overrides: object) -> tuple[RequesterSession, bytes]:
        index = download(stub, mode)
        pk = stub.GetInfo(pb.GetInfoRequest()).oprf_public_key
        session = requester_session(index, requester_keys(indices), mode, engine, oprf_public_key=pk)
        envelope = self.sign_for(session_id=session.session_id, key_id=index.header.key_id, index_digest=index.digest,
                                 commitment=session.blinded_commitment, count=session.element_count, mode=mode,
                                 official=official, **overrides)  # type: ignore[arg-type]
        return session, envelope


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
    (root / "holder.toml").write_text(holder_toml(
        tls_dir=f"pki/{slug(HOLDER_ORG)}/", client_ca="pki/ca.crt", limits=f"{limits}\n",
        sections="[holder.index_guard]\nmax_rejected_share = 0.5\n"))
    write_records(root / "records.csv", range(records), bad_rows=2)
    dep = Deployment(root, root / "holder.toml", pki, officials)
    build_index(root / "records.csv", dep.config, progress=False)
    return dep


def download(stub: pb_grpc.HolderStub, kind: Mode) -> EncryptedIndex:
    info = stub.GetInfo(pb.GetInfoRequest())
    digest = next(i.digest for i in info.indexes if i.kind == MODE_TO_PB[kind])
    data = b"".join(c.data for c in stub.DownloadIndex(pb.DownloadIndexRequest(kind=MODE_TO_PB[kind], digest=digest)))
    return EncryptedIndex.parse(data)


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
                      batch_size: int = 64, *, oprf_public_key: bytes) -> RequesterSession:
    return RequesterSession(keys, mode, index, secrets.token_bytes(16), batch_size, engine,
                            organisation=REQUESTER_ORG, public_key=oprf_public_key)
