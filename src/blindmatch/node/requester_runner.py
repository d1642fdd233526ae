"""Runs one requester job: QUERIES.csv in, RESULTS.csv (or a count) out.

The order of work is what the law and the crash-safety need:

1. Each record's legal basis is checked first, as of the day the job was first prepared
   (a resumed job must not see its element list shift); an ineligible record is never
   normalised, blinded or sent, and an unparseable one is marked ``invalid: <field>``.
2. GetInfo; when the holder's index digest differs from the cached one, the new index is
   downloaded (resumably, digest-checked) before anything is matched.
3. The remaining match keys are split into sessions no larger than the holder's session
   maximum; each session request is signed with the configured official's key.
4. Every evaluated batch is committed to the job store before more are requested, so a
   crash of either side resumes without redoing finished batches.

Logs and errors name rows and fields, never values: records are personal data.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit import AuditLog
from blindmatch.audit.events import REFUSAL_REASONS
from blindmatch.core.errors import ProtocolError
from blindmatch.core.index import EncryptedIndex, IndexFormatError
from blindmatch.core.messages import Closed, EvaluatedBatch
from blindmatch.core.outputs import Mode
from blindmatch.core.requester import RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.group import ELEMENT_BYTES
from blindmatch.node.holder_client import (
    HolderClient,
    HolderError,
    HolderRefused,
    HolderUnavailable,
)
from blindmatch.node.jobs import Job, JobStore, owner_token
from blindmatch.node.pki import organisation_of
from blindmatch.node.requester_config import RequesterConfig
from blindmatch.node.wire import MODE_TO_PB
from blindmatch.normalize import NormalizationError, Schema, default_schema, load_schema
from blindmatch.policy import SessionRequest, load_official_key, sign_request
from blindmatch.policy.request import SIGNATURE_BYTES
from blindmatch.v1 import holder_pb2 as pb

log = logging.getLogger("blindmatch.requester")

OUTPUT_COLUMNS = ("matched", "tier", "confirms", "status")
_BACKOFF = (0.2, 0.5, 1.0, 2.0)


class JobInputError(ValueError):
    """QUERIES.csv cannot be used as given (missing column, clash, changed since submission)."""


class JobStopped(Exception):
    """The daemon is shutting down; the job stays queued and resumes on the next start."""


class JobBusy(Exception):
    """Another live runner (daemon or ``requester match``) is running the job right now."""


def check_output_path(queries: Path, out: Path, mode: Mode) -> None:
    """Refuse an output that cannot be written before any budget is spent on the job.

    RESULTS.csv replacing QUERIES.csv would destroy the input (and the pinned SHA-256 that
    a resume needs); a missing or read-only directory would fail only after matching.
    Cardinality mode writes no file, so only the first rule applies to it.
    """
    queries, out = Path(queries).resolve(), Path(out).resolve()
    if out == queries or (out.exists() and os.path.samefile(out, queries)):
        raise JobInputError(f"{out}: the results file must not be the queries file")
    if mode is Mode.CARDINALITY:
        return
    if not out.parent.is_dir():
        raise JobInputError(f"{out.parent}: the results directory does not exist")
    try:
        # A real probe: os.access ignores read-only mounts and is always true for root.
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=f".{out.name}.", suffix=".probe"):
            pass
    except OSError as exc:
        raise JobInputError(f"{out.parent}: the results directory is not writable ({exc.strerror})") from None


def _today() -> date:
    """The date eligibility is judged on when a job is first prepared (UTC, like the holder)."""
    return datetime.now(UTC).date()


@dataclass(frozen=True)
class Progress:
    """What a job is doing, for progress bars and watchers: ``phase`` is prepare, download or match."""

    job_id: str
    phase: str
    done: int
    total: int


@dataclass(frozen=True)
class JobOutcome:
    job: Job
    exit_state: str  # succeeded, refused, holder_unavailable, failed


@dataclass
class Elements:
    """The job's element list: match keys with the input row and tier rank of each."""

    keys: list[bytes]
    rows: np.ndarray
    tiers: np.ndarray


def file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def iter_rows(path: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """The header and ``(row number, values)`` of each non-blank data row (row 1 = first record)."""
    handle = path.open("r", encoding="utf-8-sig", newline="")
    reader = csv.reader(handle)
    try:
        header = next(reader)
    except StopIteration:
        handle.close()
        raise JobInputError(f"{path}: empty file (no header row)") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        handle.close()
        raise JobInputError(f"{path}: header is not readable CSV ({exc.__class__.__name__})") from None

    def rows() -> Iterator[tuple[int, list[str]]]:
        with handle:
            number = 0
            try:
                for values in reader:
                    if not any(v.strip() for v in values):
                        continue
                    number += 1
                    yield number, values
            except (csv.Error, UnicodeDecodeError) as exc:
                raise JobInputError(f"{path}: row {number + 1} is not readable CSV ({exc.__class__.__name__})") from None

    return header, rows()


def check_header(header: list[str], schema: Schema) -> None:
    """Fail early, naming the column, rather than marking every row invalid."""
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise JobInputError(f"input column {name!r} appears more than once; column names must be unique")
        seen.add(name)
    for name in OUTPUT_COLUMNS:
        if name in header:
            raise JobInputError(f"input column {name!r} clashes with an output column of RESULTS.csv; rename it")
    needed = [*schema.tier_fields, *([schema.basis_field] if schema.basis_field else [])]
    for name in needed:
        if name not in header:
            raise JobInputError(f"input has no column {name!r} (the schema needs: {', '.join(needed)})")


def prepare_elements(
    path: Path, schema: Schema, mode: Mode, today: date
) -> tuple[Elements, list[tuple[int, str, int]]]:
    """Eligibility and match keys of every row, judged as of ``today``.

    A row with more values than the header is ``invalid: columns`` (its values cannot be
    assigned to fields). Cardinality mode sends each record's strongest tier only, so that
    the count is a count of records, not of keys, and sends each distinct key once: the
    session has one blind, so equal keys would give equal blinded elements and show the
    holder which inputs are equal. A record whose key an earlier record already has is
    ``ok`` with no element of its own (counted once).
    """
    header, rows = iter_rows(path)
    check_header(header, schema)
    keys: list[bytes] = []
    key_rows: list[int] = []
    key_tiers: list[int] = []
    statuses: list[tuple[int, str, int]] = []
    sent: set[bytes] = set()
    for number, values in rows:
        if len(values) > len(header):
            statuses.append((number, "invalid: columns", 0))
            continue
        record = dict(zip(header, values, strict=False))
        reason = schema.check_basis(record, today)
        if reason is not None:
            statuses.append((number, f"ineligible: {reason}", 0))
            continue
        try:
            tiered = schema.match_keys(record, "requester", number)
        except NormalizationError as exc:
            statuses.append((number, f"invalid: {exc.field}", 0))
            continue
        if mode is Mode.CARDINALITY:
            tiered = [t for t in tiered[:1] if t[1] not in sent]
            sent.update(key for _, key in tiered)
        for tier_name, key in tiered:
            keys.append(key)
            key_rows.append(number)
            key_tiers.append(schema.tier_rank[tier_name])  # the schema's rank: tiers may be skipped
        statuses.append((number, "ok", len(tiered)))
    return Elements(keys, np.array(key_rows, dtype=np.int64), np.array(key_tiers, dtype=np.int16)), statuses


def write_results(store: JobStore, job: Job, tier_names: list[str], confirming_tiers: Collection[str] = ()) -> None:
    """RESULTS.csv: the input columns in input order plus matched, tier, confirms, status (atomically).

    ``confirms`` is ``true`` when the strongest matched tier is one the schema counts as a
    confirmation, ``false`` when it is a candidate for review, empty when nothing matched.
    """
    header, rows = iter_rows(job.queries_path)
    out = job.out_path
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, *OUTPUT_COLUMNS])
        for (number, values), outcome in zip(rows, store.outcomes(job.id), strict=True):
            if outcome.row != number:
                raise JobInputError(f"job store and input disagree at row {number}")
            eligible = outcome.status == "ok"
            matched = ("true" if outcome.matched else "false") if eligible else ""
            tier = tier_names[outcome.tier] if outcome.matched and outcome.tier is not None else ""
            confirms = ("true" if tier in confirming_tiers else "false") if tier else ""
            values = values + [""] * (len(header) - len(values))
            writer.writerow([*values[: len(header)], matched, tier, confirms, outcome.status])
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, out)


class _IndexCache:
    """Parsed indexes by digest, shared by the jobs of one process (parsing costs memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parsed: dict[bytes, EncryptedIndex] = {}

    def get(self, path: Path, digest: bytes) -> EncryptedIndex:
        with self._lock:
            index = self._parsed.get(digest)
            if index is None:
                index = EncryptedIndex.parse(path.read_bytes())
                if index.digest != digest:
                    raise IndexFormatError(f"{path} does not match its recorded digest")
                self._parsed = {digest: index, **{d: i for d, i in self._parsed.items() if i.kind is not index.kind}}
            return index


class JobRunner:
    """Runs jobs of one requester (config); shared by the daemon's worker threads."""

    def __init__(
        self,
        config: RequesterConfig,
        store: JobStore,
        audit: AuditLog,
        engine: BatchEngine,
        stop: threading.Event | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.audit = audit
        self.engine = engine
        self.stop = stop or threading.Event()
        self.schema = load_schema(config.matching.schema) if config.matching.schema else default_schema()
        self._indexes = _IndexCache()
        self._download_lock = threading.Lock()
        self._check_identity()

    def _check_identity(self) -> None:
        """The signed request's organisation must be the certificate's O=, or every session is refused."""
        cert_org = organisation_of(self.config.holder.cert.read_bytes())
        if cert_org != self.config.organisation:
            raise JobInputError(
                f"{self.config.path}: organisation {self.config.organisation!r} differs from the client "
                f"certificate's O={cert_org!r}; the holder would refuse every session (wrong_organisation)"
            )

    def submit(self, queries: Path, out: Path, mode: Mode) -> tuple[Job, bool]:
        """Create the job for this input, or find the unfinished one to resume."""
        queries, out = Path(queries).resolve(), Path(out).resolve()
        check_output_path(queries, out, mode)
        return self.store.create_or_resume(queries, out, mode.value, file_sha256(queries))

    def run(self, job_id: str, progress: Callable[[Progress], None] | None = None) -> JobOutcome:
        """Run (or resume) the job to an end state; never raises for holder or input problems.

        Raises :class:`JobBusy` when another live runner has the job.
        """
        report = progress or (lambda _p: None)
        owner = owner_token()
        if not self.store.claim(job_id, owner):
            raise JobBusy(f"job {job_id} is already being run by another process; wait for it or watch it")
        job = self.store.get(job_id)
        try:
            self._run(job, report)
        except JobStopped:
            self.store.release(job_id, "queued")
            return JobOutcome(self.store.get(job_id), "stopped")
        except HolderRefused as exc:
            self.store.finish(job_id, "refused", str(exc), exc.reason, exc.status)
        except HolderUnavailable as exc:
            self.store.finish(job_id, "holder_unavailable", str(exc), exc.reason, exc.status)
        except HolderError as exc:
            self.store.finish(job_id, "failed", str(exc), exc.reason, exc.status)
        except (ProtocolError, JobInputError, IndexFormatError, OSError, ValueError) as exc:
            log.error("job %s failed: %s", job_id, exc)
            self.store.finish(job_id, "failed", str(exc), getattr(exc, "code", ""))
        except BaseException as exc:
            self.store.finish(job_id, "failed", f"internal error: {exc.__class__.__name__}")
            raise
        else:
            self.store.finish(job_id, "succeeded")
        final = self.store.get(job_id)
        return JobOutcome(final, final.state)

    # -- the job --------------------------------------------------------------------------

    def _run(self, job: Job, report: Callable[[Progress], None]) -> None:
        if file_sha256(job.queries_path) != job.input_sha256:
            raise JobInputError(f"{job.queries_path} changed since job {job.id} was submitted; submit it again")
        mode = Mode(job.mode)
        check_output_path(job.queries_path, job.out_path, mode)  # the directory may have gone since Submit
        report(Progress(job.id, "prepare", 0, 0))
        # Element numbers in the store index the list as first prepared: judge eligibility
        # on that day again, or a record crossing a date limit would shift every number.
        prepared_on = job.prepared_on or _today()
        elements, statuses = prepare_elements(job.queries_path, self.schema, mode, prepared_on)
        if not job.prepared:
            self.store.record_prepared(job.id, statuses, len(elements.keys), prepared_on)
        elif len(elements.keys) != job.elements_total:
            raise JobInputError(
                f"job {job.id}: the input now gives {len(elements.keys)} elements, but {job.elements_total} were "
                "prepared (schema or blindmatch version changed?); results would be wrong, submit it as a new job"
            )
        ineligible = sum(1 for _, status, _ in statuses if status.startswith("ineligible:"))
        official_key = load_official_key(self.config.official.key_file)
        deadline = time.monotonic() + self.config.holder.retry_seconds
        attempt = 0
        while True:
            remaining = np.setdiff1d(
                np.arange(len(elements.keys), dtype=np.uint32), self.store.done_elements(job.id), assume_unique=True
            )
            if remaining.size == 0:
                break
            try:
                with HolderClient(self.config.holder, stop=self.stop) as client:
                    self._match_remaining(client, job, mode, elements, remaining, ineligible, official_key, report)
                attempt = 0
            except (HolderUnavailable, _Retry) as exc:
                if self.stop.is_set():
                    raise JobStopped() from None  # the call was cancelled for the shutdown
                if self.store.done_elements(job.id).size > (len(elements.keys) - remaining.size):
                    deadline = time.monotonic() + self.config.holder.retry_seconds  # progress was made
                if time.monotonic() >= deadline:
                    raise exc if isinstance(exc, HolderUnavailable) else HolderUnavailable(str(exc)) from None
                log.warning("job %s: %s; retrying", job.id, exc)
                self._sleep(_BACKOFF[min(attempt, len(_BACKOFF) - 1)])
                attempt += 1
        if mode is Mode.MEMBERSHIP:
            write_results(
                self.store, self.store.get(job.id), self.schema.tier_names(), self.schema.confirming_tiers()
            )

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise JobStopped()

    def _match_remaining(
        self,
        client: HolderClient,
        job: Job,
        mode: Mode,
        elements: Elements,
        remaining: np.ndarray,
        ineligible: int,
        official_key: Ed25519PrivateKey,
        report: Callable[[Progress], None],
    ) -> None:
        info = client.info(self.config.official.name)
        if info.schema_fingerprint != self.schema.fingerprint:
            raise ProtocolError(
                "schema_mismatch",
                f"the holder matches with schema {info.schema_name} v{info.schema_version}, which differs from ours "
                f"({self.schema.name} v{self.schema.version}); both sides need the same schema and blindmatch version",
            )
        index = self._ensure_index(client, info, mode, job.id, report)
        limits = [info.limits.max_session_elements, info.budget.session_max_records, self.config.matching.session_max_records]
        session_max = min(x for x in limits if x > 0) if any(x > 0 for x in limits) else len(remaining)
        batch_size = max(1, min(self.config.matching.batch_size, info.limits.max_batch or self.config.matching.batch_size))
        total = len(elements.keys)
        for start in range(0, remaining.size, session_max):
            selection = remaining[start : start + session_max]
            self._session(client, info, index, job, mode, elements, selection, ineligible, batch_size, official_key, report, total)

    def _ensure_index(
        self, client: HolderClient, info: pb.HolderInfo, mode: Mode, job_id: str, report: Callable[[Progress], None]
    ) -> EncryptedIndex:
        wanted = next((i for i in info.indexes if i.kind == MODE_TO_PB[mode]), None)
        if wanted is None:
            raise HolderError(f"the holder serves this organisation no {mode.value} index (no official of it may use {mode.value} mode)")
        with self._download_lock:
            cached = self.store.cached_index(mode.value)
            if cached is None or cached.digest != wanted.digest:
                self.config.index_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                target = self.config.index_dir / f"{mode.value}-{wanted.digest.hex()[:32]}.bmidx"
                log.info("job %s: downloading the holder's %s index (%d bytes)", job_id, mode.value, wanted.size_bytes)
                try:
                    client.download_index(
                        mode, wanted.digest, target, lambda done, total: report(Progress(job_id, "download", done, total))
                    )
                except HolderError as exc:
                    if exc.reason == "index_mismatch":
                        raise _Retry("the holder's index changed during the download") from None
                    raise
                self.store.set_cached_index(mode.value, wanted.digest, target, wanted.size_bytes, wanted.entries)
                if cached is not None and cached.path != target:
                    cached.path.unlink(missing_ok=True)
                cached = self.store.cached_index(mode.value)
                assert cached is not None
        index = self._indexes.get(cached.path, cached.digest)
        if index.header.key_id != info.key_id:
            raise ProtocolError("key_mismatch", "the cached index was made under another holder key")
        return index

    def _session(
        self,
        client: HolderClient,
        info: pb.HolderInfo,
        index: EncryptedIndex,
        job: Job,
        mode: Mode,
        elements: Elements,
        selection: np.ndarray,
        ineligible: int,
        batch_size: int,
        official_key: Ed25519PrivateKey,
        report: Callable[[Progress], None],
        total: int,
    ) -> None:
        cfg = self.config
        session_id = secrets.token_bytes(16)
        session = RequesterSession([elements.keys[i] for i in selection], mode, index, session_id, batch_size, self.engine)
        now = datetime.now(UTC).replace(microsecond=0)
        # The job's held-back records are declared once, on its first session.
        held_back = ineligible if not self.store.has_sessions(job.id) else 0
        request = SessionRequest(
            organisation=cfg.organisation,
            official=cfg.official.name,
            mode=mode.value,
            record_count=int(selection.size),
            held_back=held_back,
            legal_basis=cfg.official.legal_basis,
            nonce=secrets.token_bytes(16),
            issued_at=now,
            expires_at=now + timedelta(seconds=cfg.official.request_lifetime_seconds),
            session_id=session_id,
            key_id=info.key_id,
            index_digest=index.digest,
            blinded_commitment=session.blinded_commitment,
        )
        envelope = sign_request(request, official_key)
        self.store.open_session(job.id, session_id, int(selection.size))

        def on_batch(batch: EvaluatedBatch) -> None:
            if mode is Mode.MEMBERSHIP:
                span = session.batch_range(batch.seq)
                chosen = selection[span.start : span.stop]
                self.store.save_batch(
                    job.id, session_id, batch.seq, chosen, elements.rows[chosen], elements.tiers[chosen],
                    session.matched[span.start : span.stop],
                )
                report(Progress(job.id, "match", self.store.get(job.id).elements_done, total))
            if self.stop.is_set():
                raise JobStopped()

        try:
            closed = run_session(
                client, self.audit, session, request, envelope, cfg.holder.name, cfg.matching.window,
                info.audit_public_key, on_batch,
            )
        except HolderError as exc:
            self.store.end_session(session_id, "refused" if exc.reason in REFUSAL_REASONS else "failed")
            if exc.reason == "index_mismatch":
                raise _Retry("the holder's index changed; refreshing it") from None
            raise
        except BaseException:
            self.store.end_session(session_id, "failed")
            raise
        if mode is Mode.CARDINALITY:
            self.store.save_cardinality_session(
                job.id, session_id, selection, elements.rows[selection], session.match_count
            )
            report(Progress(job.id, "match", self.store.get(job.id).elements_done, total))
        self.store.end_session(session_id, "closed", session.match_count, closed.transcript_hash)


def run_session(
    client: HolderClient,
    audit: AuditLog,
    session: RequesterSession,
    request: SessionRequest,
    envelope: bytes,
    peer: str,
    window: int,
    holder_audit_key: bytes,
    on_batch: Callable[[EvaluatedBatch], None],
) -> Closed:
    """One signed session with its requester-side audit trail: opened, each batch, closed or refused.

    ``on_batch`` runs after a batch is looked up and logged (the runner persists there).
    """
    sid = session.session_id.hex()
    audit.append(
        "session_opened", session_id=sid, peer=peer, official=request.official, mode=request.mode,
        records=request.record_count, held_back=request.held_back, legal_basis=request.legal_basis,
        request_sha256=hashlib.sha256(envelope[:-SIGNATURE_BYTES]).hexdigest(),
        request_signature=envelope[-SIGNATURE_BYTES:].hex(), role="requester",
    )

    def logged(batch: EvaluatedBatch) -> None:
        audit.append(
            "batch_received", session_id=sid, seq=batch.seq, count=len(batch.elements) // ELEMENT_BYTES,
            blinded_sha256=session.batch_digests[batch.seq].hex(),
            evaluated_sha256=hashlib.sha256(batch.elements).hexdigest(),
        )
        on_batch(batch)

    signatures: dict[bytes, bytes] = {}

    def sign(session_id: bytes, transcript_hash: bytes) -> tuple[bytes, bytes]:
        signatures[transcript_hash] = audit.sign_transcript(session_id, transcript_hash)
        return signatures[transcript_hash], audit.public_key

    try:
        closed = client.match(session, envelope, window, sign, holder_audit_key, logged)
    except HolderError as exc:
        if exc.reason in REFUSAL_REASONS:
            audit.append(
                "session_refused", session_id=sid, peer=peer, official=request.official,
                reason=exc.reason, status=exc.status or "UNKNOWN",
            )
            audit.checkpoint()
        raise
    audit.append(
        "session_closed", session_id=sid, peer=peer, elements=session.element_count,
        transcript_hash=closed.transcript_hash.hex(), own_signature=signatures[closed.transcript_hash].hex(),
        peer_signature=closed.signature.hex(), peer_audit_key=closed.signer_key.hex(),
        matches=session.match_count,
    )
    audit.checkpoint()
    return closed


class _Retry(Exception):
    """Holder state changed under us (index rebuilt): refresh and try again."""
