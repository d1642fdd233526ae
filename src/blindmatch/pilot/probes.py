"""Refusal probes: sessions crafted to be refused for each reason, against the live holder.

Every probe session is written to the requester's job store before it is sent, under a
job of the probes' own that ends ``succeeded`` (nothing to resume), as every session the
requester's audit log records must be (``requester.store_check``): otherwise the next
``requester match`` in the same workspace (a re-run of the demo) would take the store for
a lost one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit import AuditLog
from blindmatch.core.index import EncryptedIndex
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.pilot.workspace import (
    DEMO_PASSPHRASE,
    OTHER_OFFICIAL,
    OTHER_ORG,
    PRIMARY_OFFICIAL,
    REQUESTER_ORG,
    SECOND_OFFICIAL,
    SESSION_MAX_RECORDS,
)
from blindmatch.policy import load_official_key, sign_request
from blindmatch.policy.request import sign_encoded
from blindmatch.requester.config import RequesterConfig
from blindmatch.requester.holder_client import HolderClient, HolderRefused
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.requests import build_session_request
from blindmatch.requester.session import run_session
from blindmatch.transport.wire import MODE_TO_PB
from blindmatch.vocabulary import JobState, Mode, Reason


class ProbeJob:
    """The job the probes' sessions are recorded under in the requester's job store."""

    def __init__(self, config: RequesterConfig) -> None:
        self.store = JobStore(config.store_path)
        tag = secrets.token_hex(8)
        self.job_id = self.store.create_or_resume(Path(f"demo-probes-{tag}"), Path(f"demo-probes-{tag}"),
                                                  Mode.MEMBERSHIP.value, f"demo refusal probes {tag}")[0].id

    def opened(self, session_id: bytes, elements: int) -> None:
        self.store.open_session(self.job_id, session_id, elements)

    def ended(self, session_id: bytes, state: str, match_count: int = 0) -> None:
        self.store.end_session(session_id, state, match_count)

    def finish(self) -> None:
        self.store.finish(self.job_id, JobState.SUCCEEDED)


def _key(officials: Path, filename: str) -> Ed25519PrivateKey:
    """The pilot plays the officials: their encrypted keys and the demo passphrase."""
    return load_official_key(officials / filename, DEMO_PASSPHRASE)


def _probe(
    config: RequesterConfig, audit: AuditLog, engine: BatchEngine, reason: str, nonce_used: bytes, officials: Path,
    dual_control_records: int, job: ProbeJob,
) -> str:
    """Ask the live holder for one session crafted to be refused for ``reason``; returns the status name."""
    official, key_file, organisation, mode = PRIMARY_OFFICIAL, "alice.key", REQUESTER_ORG, Mode.MEMBERSHIP
    count, nonce, issued = 1, secrets.token_bytes(16), datetime.now(UTC).replace(microsecond=0)
    signer: Ed25519PrivateKey | None = None
    cosigners: list[Ed25519PrivateKey] = []
    if reason == Reason.UNKNOWN_OFFICIAL:
        official, signer = "Mallory Nobody", Ed25519PrivateKey.generate()
    elif reason == Reason.WRONG_ORGANISATION:
        official, key_file, organisation = OTHER_OFFICIAL, "olga.key", OTHER_ORG
    elif reason == Reason.EXPIRED:
        issued -= timedelta(hours=2)
    elif reason == Reason.REPLAYED:
        nonce = nonce_used
    elif reason == Reason.OVER_BUDGET:
        count = SESSION_MAX_RECORDS + 1
        cosigners = [_key(officials, "bob.key")]  # so that dual control is satisfied and the budget decides
    elif reason == Reason.MODE_NOT_ALLOWED:
        official, key_file, mode = SECOND_OFFICIAL, "bob.key", Mode.CARDINALITY
    elif reason == Reason.DUAL_CONTROL_MISSING:  # one official's signature on a session over the size
        count = dual_control_records + 1
    elif reason == Reason.TOO_FEW_RECORDS:  # one element is below the policy's cardinality minimum
        mode = Mode.CARDINALITY
    try:
        _signed_session(config, audit, engine, official, signer or _key(officials, key_file), organisation, mode,
                        count, nonce, issued, job, tamper=reason == Reason.UNSIGNED, cosigners=cosigners)
    except HolderRefused as exc:
        return exc.status
    return "OK"


def _signed_session(
    config: RequesterConfig,
    audit: AuditLog,
    engine: BatchEngine,
    official: str,
    key: Ed25519PrivateKey,
    organisation: str,
    mode: Mode,
    count: int,
    nonce: bytes,
    issued: datetime,
    job: ProbeJob,
    tamper: bool = False,
    cosigners: list[Ed25519PrivateKey] | None = None,
) -> None:
    """One session of ``count`` throw-away keys under the given official and request fields."""
    with HolderClient(config.holder) as client:
        info = client.info()
        wanted = next(i for i in info.indexes if i.kind == MODE_TO_PB[mode])
        path = config.index_dir / f"probe-{mode.value}-{wanted.digest.hex()[:32]}.bmidx"
        if not path.exists():
            config.index_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            client.download_index(mode, wanted.digest, path, size=wanted.size_bytes)
        index = EncryptedIndex.parse(path.read_bytes())
        session_id = secrets.token_bytes(16)
        keys = [b"blindmatch demo probe " + secrets.token_bytes(8) for _ in range(count)]
        session = RequesterSession(keys, mode, index, session_id, min(1024, info.limits.max_batch), engine,
                                   organisation=config.organisation, public_key=config.holder.oprf_public_key)
        request = build_session_request(
            session, organisation=organisation, official=official, legal_basis=config.official.legal_basis,
            key_id=info.key_id, issued_at=issued, lifetime=timedelta(minutes=15), nonce=nonce,
        )
        envelope = sign_request(request, key) + b"".join(sign_encoded(request, cosigner) for cosigner in cosigners or ())
        if tamper:
            envelope = envelope[:-1] + bytes([envelope[-1] ^ 1])
        signers = [key, *(cosigners or ())]
        job.opened(session_id, session.element_count)
        try:
            run_session(client, audit, session, request, envelope, config.holder.name, 4, info.audit_public_key,
                        lambda _batch: None, [k.public_key().public_bytes_raw() for k in signers])
        except HolderRefused as exc:
            job.ended(session_id, JobState.ended_by(exc.reason) if exc.code else JobState.FAILED)
            raise
        job.ended(session_id, "closed", session.match_count)


# The refusals the legal setting names; the demo's JSON reports exactly these under "refusals".
LEGAL_REFUSALS = (Reason.UNSIGNED, Reason.UNKNOWN_OFFICIAL, Reason.WRONG_ORGANISATION, Reason.EXPIRED, Reason.REPLAYED,
                  Reason.OVER_BUDGET, Reason.MODE_NOT_ALLOWED, Reason.DUAL_CONTROL_MISSING)


OTHER_REFUSALS = (Reason.TOO_FEW_RECORDS,)


def try_refusals(
    config: RequesterConfig, engine: BatchEngine, officials: Path, dual_control_records: int
) -> dict[str, str]:
    """Each refusal reason against the live holder: reason -> gRPC status name it returned.

    ``officials`` holds the officials' encrypted keys; ``dual_control_records`` is the
    policy's dual-control session size (the probe asks for one record more)."""
    nonce = secrets.token_bytes(16)
    job = ProbeJob(config)
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        try:
            # A granted one-key session records the nonce that the replay probe reuses.
            _signed_session(config, audit, engine, PRIMARY_OFFICIAL, _key(officials, "alice.key"),
                            REQUESTER_ORG, Mode.MEMBERSHIP, 1, nonce, datetime.now(UTC).replace(microsecond=0), job)
            return {reason: _probe(config, audit, engine, reason, nonce, officials, dual_control_records, job)
                    for reason in (*LEGAL_REFUSALS, *OTHER_REFUSALS)}
        finally:
            job.finish()
