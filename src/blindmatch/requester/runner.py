"""Runs one requester job: QUERIES.csv in, RESULTS.csv (or a count) out.

The order of work is what the law and the crash-safety need:

1. Each record's legal basis is checked first, as of the day the job was first prepared
   (a resumed job must not see its element list shift); an ineligible record is never
   normalised, blinded or sent, and an unparseable one is marked ``invalid: <field>``.
2. GetInfo; when the holder's index digest differs from the cached one, the new index is
   downloaded (resumably, digest-checked) before anything is matched.
3. The remaining match keys are split into sessions no larger than the holder's session
   maximum. Each session's request is *prepared* (id, elements, blinds, canonical request;
   ``requester.approvals``) and the job waits in ``awaiting_approval`` until officials sign
   it with their own keys (``blindmatch official approve``); only then are the prepared
   requests sent, with those signatures. The daemon holds no official's key.
4. Every evaluated batch is committed to the job store before more are requested, so a
   crash of either side resumes without redoing finished batches.

Logs and errors name rows and fields, never values: records are personal data.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from blindmatch.audit import AuditLog
from blindmatch.core.errors import ProtocolError
from blindmatch.core.events import BatchReceived
from blindmatch.core.index import EncryptedIndex, IndexFormatError
from blindmatch.core.requester import BlindedInputs, RequesterSession
from blindmatch.crypto.batch import BatchEngine
from blindmatch.normalize import resolve_schema
from blindmatch.policy import SessionRequest
from blindmatch.requester.approvals import Approvals, Decision, SessionState
from blindmatch.requester.config import RequesterConfig
from blindmatch.requester.holder_client import (
    HolderClient,
    HolderError,
    HolderUnavailable,
)
from blindmatch.requester.inputs import (
    Elements,
    JobInputError,
    _today,
    check_output_path,
    file_sha256,
    prepare_elements,
    write_results,
)
from blindmatch.requester.job_owner import owner_token
from blindmatch.requester.jobs import Job, JobStore
from blindmatch.requester.metrics import RequesterMetrics
from blindmatch.requester.pins import PinStore
from blindmatch.requester.requests import blind_released, build_session_request, fresh_blinds
from blindmatch.requester.session import run_session
from blindmatch.requester.store_check import check_results, check_store_knows_audited_sessions
from blindmatch.requester.token_inputs import TokenEpoch, load_tokens, prepare_token_elements
from blindmatch.transport.pki import organisation_of
from blindmatch.transport.retry import Backoff
from blindmatch.transport.wire import MODE_TO_PB
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.vocabulary import BlindmatchError, JobState, Mode, Reason

log = logging.getLogger("blindmatch.requester")


class JobStopped(BlindmatchError):
    """The daemon is shutting down; the job stays queued and resumes on the next start."""


class AwaitingApproval(BlindmatchError):
    """The job is prepared; officials must approve it before anything is sent."""


# Holder refusals at Hello that concern the approving official (removed from the holder's
# policy, or their mandate ended; ``expired`` also covers a request past its lifetime,
# which likewise needs newly approved requests): the job waits for a new approval.
OFFICIAL_REFUSALS = frozenset({Reason.UNKNOWN_OFFICIAL, Reason.EXPIRED})


class _OfficialRefused(BlindmatchError):
    """The holder refused a session at Hello because of its official: nothing of it was sent."""


class JobRejected(BlindmatchError):
    """An official rejected the prepared job."""


class JobBusy(BlindmatchError):
    """Another live runner (daemon or ``requester match``) is running the job right now."""


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
        self.schema = resolve_schema(config.matching.schema)
        self._indexes = _IndexCache()
        self.metrics = RequesterMetrics()
        self._download_lock = threading.Lock()
        self._token_epochs: dict[str, TokenEpoch] = {}  # job id -> its token file's issuer epoch
        self._check_identity()
        check_store_knows_audited_sessions(store, audit)
        self.approvals = Approvals(store)
        # The holder's pin, moved only by rotation statements that chain from it (SPEC.md 2.3).
        self.pins = PinStore(config.state_dir, config.holder, audit)

    def _end(self, job_id: str, reason: Reason, error: str, code: str, status: str = "") -> None:
        """Finish the job in the state its reason implies (the vocabulary's one table)."""
        self.store.finish(job_id, JobState.ended_by(reason), error, code, status)

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
            self.store.release(job_id, JobState.QUEUED)
            return JobOutcome(self.store.get(job_id), "stopped")
        except AwaitingApproval as exc:
            self.store.finish(job_id, JobState.AWAITING_APPROVAL, str(exc))
        except JobRejected as exc:
            self.store.finish(job_id, JobState.REJECTED, str(exc))
        except HolderError as exc:
            self._end(job_id, exc.reason, str(exc), exc.code, exc.status)
        except (BlindmatchError, IndexFormatError, OSError, ValueError) as exc:
            log.error("job %s failed: %s", job_id, exc)
            reason = exc.reason if isinstance(exc, BlindmatchError) else Reason.FAILED
            self._end(job_id, reason, str(exc), reason if reason is not Reason.FAILED else "")
        except BaseException as exc:
            self.store.finish(job_id, JobState.FAILED, f"internal error: {exc.__class__.__name__}")
            raise
        else:
            self.store.finish(job_id, JobState.SUCCEEDED)
        final = self.store.get(job_id)
        self.metrics.jobs.labels(final.state).inc()
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
        prepared_on = job.preparation.on or _today()
        elements, statuses = self._elements(job, mode, prepared_on)
        if job.preparation.on is None:
            self.store.record_prepared(job.id, statuses, len(elements.keys), prepared_on)
        elif len(elements.keys) != job.preparation.elements_total:
            raise JobInputError(
                f"job {job.id}: the input now gives {len(elements.keys)} elements, but {job.preparation.elements_total} were "
                "prepared (schema or blindmatch version changed?); results would be wrong, submit it as a new job"
            )
        ineligible = sum(1 for _, status, _ in statuses if status.startswith("ineligible:"))
        deadline = time.monotonic() + self.config.holder.retry_seconds
        backoff = Backoff()
        while True:
            remaining = np.setdiff1d(
                np.arange(len(elements.keys), dtype=np.uint32), self.store.done_elements(job.id), assume_unique=True
            )
            if remaining.size == 0:
                break
            try:
                with HolderClient(self.config.holder, stop=self.stop, pins=self.pins) as client:
                    self._match_remaining(client, job, mode, elements, remaining, ineligible, report)
                backoff.reset()
            except (HolderUnavailable, _Retry) as exc:
                if self.stop.is_set():
                    raise JobStopped() from None  # the call was cancelled for the shutdown
                if self.store.done_elements(job.id).size > (len(elements.keys) - remaining.size):
                    deadline = time.monotonic() + self.config.holder.retry_seconds  # progress was made
                if time.monotonic() >= deadline:
                    raise exc if isinstance(exc, HolderUnavailable) else HolderUnavailable(str(exc)) from None
                log.warning("job %s: %s; retrying", job.id, exc)
                self._sleep(backoff.next_delay())
        if mode is Mode.MEMBERSHIP:
            check_results(self.store, job, elements)
            write_results(
                self.store, self.store.get(job.id), self.schema.tier_names(), self.schema.confirming_tiers()
            )

    def _elements(self, job: Job, mode: Mode, prepared_on: date) -> tuple[Elements, list[tuple[int, str, int]]]:
        """The job's elements: match keys of its records, or the issuer's tokens with ``[eligibility]``."""
        eligibility = self.config.eligibility
        if eligibility is None:
            return prepare_elements(job.queries_path, self.schema, mode, prepared_on)
        tokens = load_tokens(eligibility.tokens_for(job.queries_path), eligibility.issuer_key, self.schema)
        self._token_epochs[job.id] = TokenEpoch(eligibility.tokens_for(job.queries_path), tokens.header.epoch.name)
        return prepare_token_elements(job.queries_path, tokens, self.schema, mode, prepared_on)

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
        report: Callable[[Progress], None],
    ) -> None:
        decision, detail = self.approvals.decision(job.id)
        if decision is Decision.REJECTED:
            raise JobRejected(detail)
        info = client.info(self.config.official.name)
        self.metrics.budget_seen(info.budget.organisation_day_remaining, info.budget.organisation_30d_remaining)
        if info.schema_fingerprint != self.schema.fingerprint:
            raise ProtocolError(
                Reason.SCHEMA_MISMATCH,
                f"the holder matches with schema {info.schema_name} v{info.schema_version}, which differs from ours "
                f"({self.schema.name} v{self.schema.version}); both sides need the same schema and blindmatch version",
            )
        ahead = ThreadPoolExecutor(1, thread_name_prefix="blind-ahead")
        try:
            blinding = blind_released(ahead, self.approvals, job.id, elements.keys, mode, self.engine)  # during the download
            index = self._ensure_index(client, info, mode, job.id, report)
            limits = [info.limits.max_session_elements, info.budget.session_max_records, self.config.matching.session_max_records]
            session_max = min(x for x in limits if x > 0) if any(x > 0 for x in limits) else len(remaining)
            batch_size = max(1, min(self.config.matching.batch_size, info.limits.max_batch or self.config.matching.batch_size))
            self._match_approved(client, info, index, job, mode, elements, remaining, ineligible, batch_size,
                                 session_max, report, blinding)
        finally:
            ahead.shutdown(wait=True, cancel_futures=True)

    def _ensure_index(
        self, client: HolderClient, info: pb.HolderInfo, mode: Mode, job_id: str, report: Callable[[Progress], None]
    ) -> EncryptedIndex:
        wanted = next((i for i in info.indexes if i.kind == MODE_TO_PB[mode]), None)
        if wanted is None:
            raise HolderError(f"the holder serves this organisation no {mode.value} index (no official of it may use {mode.value} mode)")
        token_epoch = self._token_epochs.get(job_id)
        if token_epoch is not None:  # before anything is downloaded or sent (SPEC.md 15.6)
            token_epoch.check_index(info.issuer_epoch)
        with self._download_lock:
            cached = self.store.cached_index(mode.value)
            if cached is None or cached.digest != wanted.digest:
                self.config.index_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                target = self.config.index_dir / f"{mode.value}-{wanted.digest.hex()[:32]}.bmidx"
                log.info("job %s: downloading the holder's %s index (%d bytes)", job_id, mode.value, wanted.size_bytes)
                try:
                    client.download_index(
                        mode, wanted.digest, target, lambda done, total: report(Progress(job_id, "download", done, total)),
                        issuer_epoch=token_epoch.epoch if token_epoch is not None else "", size=wanted.size_bytes,
                    )
                except HolderError as exc:
                    if exc.reason == Reason.INDEX_MISMATCH:
                        raise _Retry("the holder's index changed during the download") from None
                    raise
                self.store.set_cached_index(mode.value, wanted.digest, target, wanted.size_bytes, wanted.entries)
                if cached is not None and cached.path != target:
                    cached.path.unlink(missing_ok=True)
                cached = self.store.cached_index(mode.value)
                assert cached is not None
        index = self._indexes.get(cached.path, cached.digest)
        if index.header.key_id != info.key_id:
            raise ProtocolError(Reason.KEY_MISMATCH, "the cached index was made under another holder key")
        return index

    def _match_approved(
        self, client: HolderClient, info: pb.HolderInfo, index: EncryptedIndex, job: Job, mode: Mode,
        elements: Elements, remaining: np.ndarray, ineligible: int, batch_size: int, session_max: int,
        report: Callable[[Progress], None], blinding: dict[bytes, Future[BlindedInputs]],
    ) -> None:
        """Send the prepared sessions the officials released, or prepare new ones and wait.

        A prepared session that can no longer be sent as approved (expired request, new
        holder index or key, other batch size) is dropped and the rest re-prepared: an
        approval covers exactly one request, never a re-drawn one.
        """
        decision, _ = self.approvals.decision(job.id)
        pending = self.approvals.pending(job.id)
        if decision is not Decision.RELEASED and any(p.request.official != self.config.official.name for p in pending):
            # ``[official] name`` names someone else now (the refused official's successor):
            # unapproved requests naming the old one are dropped and prepared again.
            log.warning("job %s: the prepared requests name another official than [official] name; preparing again",
                        job.id)
            for prepared in pending:
                self.approvals.mark(prepared.session_id, SessionState.DROPPED)
            pending = []
        if pending and decision is not Decision.RELEASED:
            raise AwaitingApproval(f"job {job.id} waits for officials: blindmatch official approve {job.id}")
        margin = datetime.now(UTC) + timedelta(seconds=30)
        for number, prepared in enumerate(pending):
            if self.stop.is_set():
                raise JobStopped()  # between sessions: the rest stay approved and resume on the next start
            if number:
                self._check_keys_unchanged(client, info)
            keys = [elements.keys[i] for i in prepared.elements]
            ahead = blinding.get(prepared.session_id)
            session = RequesterSession(keys, mode, index, prepared.session_id, batch_size, self.engine,
                                       blinds=None if ahead else prepared.blinds, prepared=ahead.result() if ahead else None,
                                       organisation=self.config.organisation, public_key=info.oprf_public_key)
            request = prepared.request
            if (request.expires_at <= margin or request.key_id != info.key_id or request.index_digest != index.digest
                    or session.blinded_commitment != request.blinded_commitment):
                log.warning("job %s: prepared session %d can no longer be sent as approved; preparing again",
                            job.id, prepared.seq)
                self.approvals.mark(prepared.session_id, SessionState.DROPPED)
                continue
            # Marked before sending: a session id that may have reached the holder is never reused.
            self.approvals.mark(prepared.session_id, SessionState.SENT)
            try:
                self._send(client, info, job, mode, elements, prepared.elements, session, request,
                           prepared.envelope(), report, len(elements.keys), [key for key, _ in prepared.signatures])
            except _OfficialRefused as refused:
                # The rest of the approval names the same official: none of it is sent.
                left = np.setdiff1d(remaining, self.store.done_elements(job.id), assume_unique=True)
                self._prepare(job, mode, index, info, elements, left, ineligible, batch_size, session_max,
                              because=str(refused))
        left = np.setdiff1d(remaining, self.store.done_elements(job.id), assume_unique=True)
        if left.size:
            self._prepare(job, mode, index, info, elements, left, ineligible, batch_size, session_max)

    def _check_keys_unchanged(self, client: HolderClient, info: pb.HolderInfo) -> None:
        """Between two sessions: a holder restarted with another audit key (or OPRF key) would sign
        the next Closed with it, so read GetInfo again (which moves the pin only through valid
        statements, SPEC.md 2.3-2.4) and start over from it."""
        now = client.info(self.config.official.name)
        if (now.oprf_public_key, now.audit_public_key) != (info.oprf_public_key, info.audit_public_key):
            raise _Retry("the holder's keys changed between sessions; reading its GetInfo again")

    def _prepare(
        self, job: Job, mode: Mode, index: EncryptedIndex, info: pb.HolderInfo, elements: Elements,
        remaining: np.ndarray, ineligible: int, batch_size: int, session_max: int, because: str = "",
    ) -> None:
        """Fix each session's id, elements, blinds and request; then wait for the officials.

        ``because`` says why the job waits again (a refused official), first in the job's error."""
        cfg = self.config
        now = datetime.now(UTC).replace(microsecond=0)
        prepared = []
        for start in range(0, remaining.size, session_max):
            selection = remaining[start : start + session_max]
            session_id = secrets.token_bytes(16)
            blinds = fresh_blinds(int(selection.size), mode)
            session = RequesterSession([elements.keys[i] for i in selection], mode, index, session_id, batch_size,
                                       self.engine, blinds=blinds, organisation=cfg.organisation,
                                       public_key=info.oprf_public_key)
            held_back = ineligible if start == 0 and not self.store.has_sessions(job.id) else 0
            request = build_session_request(
                session, organisation=cfg.organisation, official=cfg.official.name,
                legal_basis=cfg.official.legal_basis, key_id=info.key_id, issued_at=now,
                lifetime=timedelta(seconds=cfg.official.request_lifetime_seconds), held_back=held_back,
            )
            prepared.append((session_id, selection, blinds, request))
        self.approvals.prepare(job.id, prepared)
        raise AwaitingApproval(
            f"{because}job {job.id} is prepared ({len(prepared)} session(s), {remaining.size} elements) and waits for "
            f"officials: blindmatch official approve {job.id}"
        )

    def _send(
        self, client: HolderClient, info: pb.HolderInfo, job: Job, mode: Mode, elements: Elements,
        selection: np.ndarray, session: RequesterSession, request: SessionRequest, envelope: bytes,
        report: Callable[[Progress], None], total: int, signer_keys: list[bytes],
    ) -> None:
        """Run one signed session and commit its results batch by batch."""
        cfg = self.config
        session_id = session.session_id
        self.store.open_session(job.id, session_id, int(selection.size))

        received: list[int] = []  # the batches that came back: a refusal before any is a refusal at Hello

        def on_batch(batch: BatchReceived) -> None:
            received.append(batch.seq)
            if mode is Mode.MEMBERSHIP:
                span = session.batch_range(batch.seq)
                chosen = selection[span.start : span.stop]
                self.store.save_batch(
                    job.id, session_id, batch.seq, chosen, elements.rows[chosen], elements.tiers[chosen],
                    session.matched[span.start : span.stop],
                )
                report(Progress(job.id, "match", self.store.get(job.id).elements_done, total))
            # Asked to stop, the session is finished, not abandoned: the holder has reserved it
            # and evaluates the rest in moments (HolderClient cuts it only after a grace).

        started = time.monotonic()
        try:
            closed = run_session(
                client, self.audit, session, request, envelope, cfg.holder.name, cfg.matching.window,
                info.audit_public_key, on_batch, signer_keys,
            )
        except HolderError as exc:
            self.metrics.session_ended(time.monotonic() - started, reason=exc.code or exc.reason)
            self.store.end_session(session_id, JobState.ended_by(exc.reason) if exc.code else JobState.FAILED)
            if exc.reason == Reason.INDEX_MISMATCH:
                raise _Retry("the holder's index changed; refreshing it") from None
            if exc.reason in OFFICIAL_REFUSALS and not received:
                raise _OfficialRefused(
                    f"the holder refused official {request.official!r} ({exc.reason}: {exc}); nothing more was sent "
                    "and the finished batches are kept; another official must approve the new requests (name them in "
                    "requester.toml's [official] name, restart the requester and submit the job again: it resumes with "
                    "requests naming them). "
                ) from None
            if exc.reason in (Reason.KEY_MISMATCH, Reason.EPOCH_ENDED):
                # A key change between sessions: GetInfo again, which moves the pin only through
                # valid rotation statements; otherwise the job stops holder_not_pinned, its batches kept.
                raise _Retry("the holder's key changed; reading its GetInfo again") from None
            raise
        except BaseException:
            self.store.end_session(session_id, JobState.FAILED)
            raise
        if mode is Mode.CARDINALITY:
            self.store.save_cardinality_session(
                job.id, session_id, selection, elements.rows[selection], session.match_count
            )
            report(Progress(job.id, "match", self.store.get(job.id).elements_done, total))
        self.store.end_session(session_id, "closed", session.match_count, closed.transcript_hash)
        self.metrics.session_ended(time.monotonic() - started, int(selection.size))


class _Retry(BlindmatchError):
    """Holder state changed under us (index rebuilt): refresh and try again."""
