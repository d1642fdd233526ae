"""The holder daemon: gRPC service, mutual TLS, policy, audit and graceful shutdown.

The servicer is a thin adapter around the sans-IO :class:`HolderSession`: it turns
protobuf into core messages (``wire``), asks the policy whether a session may run,
writes the audit trail, and maps every failure to a gRPC status plus the stable
``blindmatch-reason`` (``transport.status``). Identity comes only from the client
certificate (O=), never from anything the client says in a message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import NoReturn

import grpc

from blindmatch import PROTOCOL_VERSION, __version__
from blindmatch.audit import AuditError, AuditLog, entries
from blindmatch.audit.keeper import AuditKeeper
from blindmatch.audit.peer_checkpoints import store_peer_checkpoint, verify_peer_note
from blindmatch.core.errors import ProtocolError
from blindmatch.core.events import (
    AcceptSession,
    BatchEvaluated,
    EndOfStream,
    Output,
    RefuseSession,
    SessionClosed,
    SessionRefused,
)
from blindmatch.core.holder import HolderSession
from blindmatch.core.messages import Accept, Closed, EvaluatedBatch, Hello
from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.budget_ledger import prepare_budgets
from blindmatch.holder.capacity import (
    HEALTH_WATCHERS,
    admitted_calls,
    downloads_per_organisation,
    server_options,
    worker_threads,
)
from blindmatch.holder.config import HolderNodeConfig, TlsConfig
from blindmatch.holder.epoch_rotation import EpochRotator, published_after_crash
from blindmatch.holder.index_download import audited_download
from blindmatch.holder.key_usage import KEY_USAGE_DB, KeyUsage
from blindmatch.holder.match_progress import MatchProgress, close_is_signed, quiet_allowed
from blindmatch.holder.metrics import HolderMetrics
from blindmatch.holder.runtime import HolderRuntime, PolicyGate
from blindmatch.holder.session_ledger import (
    AUDIT_LOST_MESSAGE,
    AUDIT_UNAVAILABLE_MESSAGE,
    AuditUnavailable,
    SessionLedger,
)
from blindmatch.holder.store import StoreError, load_committed_key, open_indexes
from blindmatch.holder.tokens import check_served_epoch, epoch_fields, epoch_refusal
from blindmatch.policy import Grant, Policy, PolicyRefusal
from blindmatch.transport.context import call_cancelled, peer_organisation
from blindmatch.transport.guard import CallGuard
from blindmatch.transport.serving import DaemonServer
from blindmatch.transport.status import abort, status_of
from blindmatch.transport.streams import (
    BoundedHealthServicer,
    DeadlineReader,
    NoSlot,
    SendWatch,
    StreamIdle,
    StreamSlots,
)
from blindmatch.transport.tls import server_credentials
from blindmatch.transport.wire import MODE_TO_PB, client_message_from_pb, mode_from_pb, server_message_to_pb
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Mode, Reason
from blindmatch.witness.client import WitnessClient

log = logging.getLogger("blindmatch.holder")

SERVICE_NAME = "blindmatch.v1.Holder"
# Policy refusals issued before any signature verified: the name in the request is only a claim.
_UNVERIFIED_REFUSALS = frozenset({Reason.UNSIGNED, Reason.UNKNOWN_OFFICIAL})
# What the peer sees when a granted session fails unexpectedly: the exception text could
# carry internals (paths, SQL), so it goes only to the holder's log.
INTERNAL_ERROR_MESSAGE = "internal error; see the holder's log"


class HolderServicer(pb_grpc.HolderServicer):
    def __init__(self, runtime: HolderRuntime, metrics: HolderMetrics) -> None:
        self._rt = runtime
        self._ledger = SessionLedger(runtime.audit, runtime.gate)
        self.metrics = metrics
        limits = runtime.limits
        self.match_slots = StreamSlots("Match sessions", limits.max_concurrent_sessions,
                                       limits.max_sessions_per_organisation)
        self.send_watch = SendWatch()
        self.download_slots = StreamSlots("index downloads", limits.max_concurrent_downloads,
                                          downloads_per_organisation(limits))

    def _authenticate(self, context: grpc.ServicerContext) -> str:
        organisation = peer_organisation(context)
        if organisation not in self._rt.allowed_organisations:
            log.warning("refused a call from organisation %r: not in holder.tls.allowed_organisations", organisation)
            self.metrics.refused(Reason.ORGANISATION_NOT_ALLOWED)
            self._rt.keeper.refusals.unauthenticated(organisation or "", Reason.ORGANISATION_NOT_ALLOWED)
            abort(context, grpc.StatusCode.PERMISSION_DENIED, Reason.ORGANISATION_NOT_ALLOWED,
                  f"organisation {organisation!r} of the client certificate may not use this holder")
        return organisation

    # --- GetInfo -------------------------------------------------------------------------

    def GetInfo(self, request: pb.GetInfoRequest, context: grpc.ServicerContext) -> pb.HolderInfo:
        with self.metrics.call_seconds.labels("GetInfo").time():
            return self._info(request, context)

    def _info(self, request: pb.GetInfoRequest, context: grpc.ServicerContext) -> pb.HolderInfo:
        organisation = self._authenticate(context)
        rt = self._rt
        key, indexes, rotations = rt.serving()
        manifest, limits = indexes.manifest, rt.limits
        now = rt.clock()
        kinds = rt.gate.index_kinds(organisation, now)
        served = manifest.for_organisation(organisation)
        return pb.HolderInfo(
            protocol_version=PROTOCOL_VERSION,
            key_id=key.key_id,
            schema_fingerprint=manifest.schema_fingerprint,
            indexes=[
                pb.IndexInfo(kind=MODE_TO_PB[kind], digest=f.digest, size_bytes=f.size_bytes, entries=f.entries)
                for kind, f in sorted(served.items(), key=lambda item: item[0].value)
                if kind in kinds
            ],
            limits=pb.Limits(
                max_batch=limits.max_batch,
                max_session_elements=limits.max_session_elements,
                max_message_bytes=limits.max_message_bytes,
                index_chunk_bytes=limits.index_chunk_bytes,
            ),
            budget=rt.gate.budget(organisation, request.official, now),
            audit_public_key=rt.audit.public_key,
            schema_name=manifest.schema_name,
            schema_version=manifest.schema_version,
            oprf_public_key=key.public_key,
            organisation=rt.organisation,
            key_rotations=rotations,
            **epoch_fields(manifest.issuer_epoch),
        )

    # --- DownloadIndex -------------------------------------------------------------------

    def DownloadIndex(self, request: pb.DownloadIndexRequest, context: grpc.ServicerContext) -> Iterator[pb.IndexChunk]:
        organisation = self._authenticate(context)
        try:
            kind = mode_from_pb(request.kind)
        except ProtocolError as exc:
            abort(context, status_of(exc.code), exc.code, exc.message)
        if kind not in self._rt.gate.index_kinds(organisation, self._rt.clock()):
            abort(context, grpc.StatusCode.PERMISSION_DENIED, Reason.MODE_NOT_ALLOWED,
                  f"no official of {organisation!r} may use {kind.value} mode, so its index is not served")
        indexes = self._rt.serving()[1]  # one set of files for the whole download, even if a rotation switches them
        current = indexes.manifest.files[organisation, kind]
        if refusal := epoch_refusal(indexes.manifest.issuer_epoch, request.issuer_epoch, self._rt.clock()):
            abort(context, status_of(refusal.code), refusal.code, refusal.message)
        if request.digest and request.digest != current.digest:
            abort(context, grpc.StatusCode.FAILED_PRECONDITION, Reason.INDEX_MISMATCH,
                  f"the {kind.value} index changed: {request.digest.hex()[:16]}... is not current; call GetInfo and restart")
        if request.offset and not request.digest:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, Reason.BAD_REQUEST, "resuming from an offset requires the digest")
        if request.offset > current.size_bytes:
            abort(context, grpc.StatusCode.OUT_OF_RANGE, Reason.BAD_REQUEST,
                  f"offset {request.offset} is past the end of the index ({current.size_bytes} bytes)")
        try:
            with self.download_slots.slot(organisation):
                yield from audited_download(self._ledger, indexes, current, request.offset,
                                            self._rt.limits.index_chunk_bytes, organisation)
        except AuditUnavailable as exc:  # the last chunk is never sent: the requester has no complete index
            log.error("download of the %s index by %r ended: %s", kind.value, organisation, exc)
            abort(context, grpc.StatusCode.UNAVAILABLE, Reason.AUDIT_UNAVAILABLE,
                  "the holder cannot write its audit log, so this download does not count; try again later")
        except NoSlot as exc:
            self.metrics.refused(exc.reason)
            abort(context, status_of(exc.reason), exc.reason, str(exc))

    # --- Match ---------------------------------------------------------------------------

    def Match(self, request_iterator: Iterator[pb.MatchClientMessage], context: grpc.ServicerContext) -> Iterator[pb.MatchServerMessage]:
        peer = self._authenticate(context)
        try:
            with self.match_slots.slot(peer):
                reader = DeadlineReader(request_iterator, name="match-reader")
                try:
                    yield from self._session(peer, reader, context)
                finally:
                    reader.close()
        except NoSlot as exc:
            log.info("Match call from %r refused: %s", peer, exc)
            self.metrics.refused(exc.reason)
            abort(context, status_of(exc.reason), exc.reason, str(exc))

    def _session(self, peer: str, reader: DeadlineReader, context: grpc.ServicerContext) -> Iterator[pb.MatchServerMessage]:
        session = HolderSession(self._rt.holder_config(peer), self._rt.engine, close_is_signed, peer)
        progress = MatchProgress()
        started = time.monotonic()
        # Nothing inside this try calls abort(): every abort happens in a handler below, so
        # ``except Exception`` never swallows the exception grpc's abort raises.
        try:
            for message in self._match(peer, session, progress, reader):
                with self.send_watch.sending(context, self._rt.limits.idle_timeout_seconds):
                    yield message
            progress.closed = True
        except StreamIdle as idle:
            progress.reason = idle.reason
            if progress.failure_to_record:
                self._audit_failure(peer, progress, idle.reason, grpc.StatusCode.DEADLINE_EXCEEDED)
            log.info("Match call from %r ended: %s", peer, idle)
            abort(context, status_of(idle.reason), idle.reason, str(idle))
        except ProtocolError as exc:
            progress.reason = exc.code
            if progress.failure_to_record and call_cancelled(context):
                # A cancelled call ends the request stream like a half-close: not the peer's protocol error.
                self._unexpected_failure(peer, progress, context)
            if progress.failure_to_record:
                self._audit_failure(peer, progress, exc.code, status_of(exc.code))
            elif not progress.granted and progress.hello is not None:
                self._audit_hello_refusal(peer, progress.hello, exc)
            log.info("session ended: %s", exc)
            abort(context, status_of(exc.code), exc.code, exc.message)
        except PolicyRefusal as refusal:  # audited by _authorize
            progress.reason = refusal.reason
            abort(context, status_of(refusal.reason), refusal.reason, refusal.message)
        except AuditUnavailable as exc:
            self._audit_unavailable(peer, progress, exc, context)
        except GeneratorExit:
            # gRPC dropped the response stream (the call was cancelled or the server is
            # stopping): the generator is being closed and may send nothing more.
            progress.reason = Reason.CANCELLED
            if progress.failure_to_record:
                self._audit_failure(peer, progress, Reason.CANCELLED, grpc.StatusCode.CANCELLED)
            raise
        except Exception:
            self._unexpected_failure(peer, progress, context)
        finally:
            if progress.granted:
                self._ledger.settle(progress.hello.session_id, session.evaluated_count)  # type: ignore[union-attr]
            self.metrics.session_ended(progress.outcome, time.monotonic() - started, progress.reason)

    def _audit_unavailable(self, peer: str, progress: MatchProgress, exc: AuditUnavailable,
                           context: grpc.ServicerContext) -> NoReturn:
        """End a session whose audit entry could not be written (SPEC section 9.5: ``audit_unavailable``)."""
        session = progress.hello.session_id.hex() if progress.hello else "?"
        log.error("session %s from %r ended: %s", session, peer, exc)
        if progress.granted:
            if progress.failure_to_record:
                self._audit_failure(peer, progress, Reason.AUDIT_UNAVAILABLE, grpc.StatusCode.UNAVAILABLE)
            abort(context, grpc.StatusCode.UNAVAILABLE, Reason.AUDIT_UNAVAILABLE, AUDIT_LOST_MESSAGE)
        if progress.hello is not None:
            self._ledger.record_outcome(entries.session_refused(progress.hello.session_id, peer, "", exc.reason, "UNAVAILABLE"))
        abort(context, grpc.StatusCode.UNAVAILABLE, Reason.AUDIT_UNAVAILABLE, AUDIT_UNAVAILABLE_MESSAGE)

    def _audit_failure(self, peer: str, progress: MatchProgress, reason: Reason, status: grpc.StatusCode) -> None:
        """``session_failed`` for a granted session (it is settled to the elements evaluated, SPEC section 7.6)."""
        assert progress.hello is not None
        self._ledger.record_outcome(entries.session_failed(progress.hello.session_id, peer, reason, status.name))

    def _unexpected_failure(self, peer: str, progress: MatchProgress, context: grpc.ServicerContext) -> NoReturn:
        """End the call after an exception that is not a protocol or policy outcome.

        A call that is no longer active was cancelled or lost by the requester (gRPC raises
        from the request iterator); anything else is a holder bug or fault. Either way the
        peer gets a fixed message: exception text stays in the holder's log.
        """
        if context.is_active():
            reason, status, message = Reason.INTERNAL, grpc.StatusCode.INTERNAL, INTERNAL_ERROR_MESSAGE
            log.exception("Match call from %r failed unexpectedly", peer)
        else:
            reason, status, message = Reason.CANCELLED, grpc.StatusCode.CANCELLED, "the call was cancelled"
            log.info("Match call from %r ended: the requester cancelled or disconnected", peer)
        progress.reason = reason
        if progress.failure_to_record:
            self._audit_failure(peer, progress, reason, status)
        abort(context, status, reason, message)

    def _match(
        self,
        peer: str,
        session: HolderSession,
        progress: MatchProgress,
        reader: DeadlineReader,
    ) -> Iterator[pb.MatchServerMessage]:
        limits = self._rt.limits
        first = reader.next(limits.hello_timeout_seconds)
        if first is None:
            raise ProtocolError(Reason.BAD_REQUEST, "the stream ended before a Hello")
        hello = client_message_from_pb(first)
        if not isinstance(hello, Hello):
            raise ProtocolError(Reason.UNEXPECTED_MESSAGE, "the first message must be a Hello")
        progress.hello = hello
        check_served_epoch(self._rt.serving()[1].manifest.issuer_epoch, self._rt.clock())
        session.receive(hello)
        grant = self._authorize(peer, session, hello, progress)
        yield from self._send(peer, hello, session.receive(AcceptSession()), progress)
        while (raw := reader.next(quiet_allowed(session, limits.idle_timeout_seconds))) is not None:
            yield from self._send(peer, hello, session.receive(client_message_from_pb(raw)), progress)
        session.receive(EndOfStream())
        log.info("session %s with %r (%s) closed: %d elements", hello.session_id.hex(), peer,
                 grant.official.name, session.evaluated_count)

    def _send(self, peer: str, hello: Hello, output: Output, progress: MatchProgress) -> Iterator[pb.MatchServerMessage]:
        """The audit adapter: one entry per core event, then the core's messages on the wire
        (so nothing is sent that the log does not hold)."""
        audit = self._rt.audit
        own_signature = own_checkpoint = b""
        for event in output.events:
            if isinstance(event, BatchEvaluated):
                self._ledger.record(entries.batch_evaluated(hello.session_id, event))
                self.metrics.evaluations.inc(event.count)
            elif isinstance(event, SessionClosed):
                assert event.close is not None
                own_signature = audit.sign_transcript(event.session_id, event.transcript_hash)
                self._ledger.record(entries.session_closed(event, peer, own_signature, event.close.signature,
                                                    event.close.signer_key))
                progress.close_recorded = True
                # A closed session is checkpointed at once (its Closed carries the checkpoint);
                # refusals and failures wait for the keeper's periodic one (SPEC.md 10.6).
                own_checkpoint = self._ledger.closing_checkpoint()
                store_peer_checkpoint(audit.path, verify_peer_note(event.close.checkpoint_note,
                                                                   event.close.signer_key))
                self._rt.keeper.checkpoint_now()
        for message in output.messages:
            if isinstance(message, Closed):
                message = replace(message, signature=own_signature, signer_key=audit.public_key,
                                  checkpoint_note=own_checkpoint)
            assert isinstance(message, Accept | EvaluatedBatch | Closed)
            yield server_message_to_pb(message)

    def _authorize(self, peer: str, session: HolderSession, hello: Hello, progress: MatchProgress) -> Grant:
        """Ask the policy; a refusal is audited here and re-raised for Match to end the call."""
        rt = self._rt
        try:
            # The key's lifetime cap is reserved first and given back if the policy refuses.
            rt.key_usage.reserve(hello.key_id, hello.element_count)  # the session's key (the core checked it)
            try:
                grant = rt.gate.authorize(
                    hello.authorization,
                    peer_organisation=peer,
                    session_id=hello.session_id,
                    key_id=hello.key_id,
                    index_digest=hello.index_digest,
                    blinded_commitment=session.blinded_commitment,
                    record_count=hello.element_count,
                    mode=hello.mode.value,
                    now=rt.clock(),
                    before_commit=lambda granted: self._audit_grant(peer, hello, granted),
                )
            except BaseException:
                rt.key_usage.release(hello.key_id, hello.element_count)
                raise
        except PolicyRefusal as refusal:
            for event in session.receive(RefuseSession(refusal.reason, refusal.message)).events:
                assert isinstance(event, SessionRefused)
                official = "" if event.reason in _UNVERIFIED_REFUSALS else rt.gate.verified_official(hello.authorization)
                rt.keeper.refusals.refused(event.session_id, peer, official, event.reason, event.reason.status)
            log.info("session %s from %r refused: %s", hello.session_id.hex(), peer, refusal)
            raise
        progress.granted = True
        return grant

    def _audit_grant(self, peer: str, hello: Hello, grant: Grant) -> None:
        """Audit a grant before its debit commits (SPEC section 7.6): if either entry cannot
        be written the debit rolls back and the session is refused ``audit_unavailable``."""
        self._ledger.record(entries.session_opened("holder", hello.session_id, peer, grant.request, hello.authorization,
                                                   grant.signer_keys))
        self._ledger.record(entries.budget_debited(hello.session_id, grant.debit, grant.request.nonce))

    def _audit_hello_refusal(self, peer: str, hello: Hello, exc: ProtocolError) -> None:
        """Record a Hello the core rejected: its own entry only if a registered official signed it."""
        self._rt.keeper.refusals.refused(
            hello.session_id, peer, self._rt.gate.verified_official(hello.authorization), exc.code, exc.code.status)


class HolderDaemon:
    """One running holder: the gRPC server plus the resources it owns (audit log, index files)."""

    def __init__(self, runtime: HolderRuntime, tls: TlsConfig, listen: str, metrics_listen: str | None = None) -> None:
        self.runtime = runtime
        self._metrics_listen = metrics_listen
        self.metrics_port = 0  # the bound metrics port once started (0: no metrics served)
        self.rotator: EpochRotator | None = None  # the key's epoch schedule (from_config sets it)
        limits = runtime.limits
        server = grpc.server(
            ThreadPoolExecutor(max_workers=worker_threads(limits), thread_name_prefix="holder-rpc"),
            interceptors=[CallGuard(limits.max_message_bytes)],
            options=server_options(limits),
            maximum_concurrent_rpcs=admitted_calls(limits),
        )
        self.metrics = HolderMetrics(runtime.gate.organisation_budgets, runtime.clock)
        self.servicer = HolderServicer(runtime, self.metrics)
        pb_grpc.add_HolderServicer_to_server(self.servicer, server)
        self._serving = DaemonServer(server, SERVICE_NAME, BoundedHealthServicer(HEALTH_WATCHERS))
        self.port = self._serving.bind(listen, server_credentials(tls.key, tls.cert, tls.client_ca, StoreError))
        if not self.port:
            raise StoreError(f"cannot listen on {listen}: the address is in use or not available on this host")

    @classmethod
    def from_config(cls, config: HolderNodeConfig, engine: BatchEngine | None = None,
                    clock: Callable[[], datetime] | None = None) -> HolderDaemon:
        """Load key, indexes, policy and audit log as holder.toml says; nothing is served yet."""
        indexes = open_indexes(config.index_dir)
        try:
            # The opened manifest decides the key, so a rebuild committing meanwhile cannot split them.
            key = load_committed_key(config.key_file, config.index_dir, indexes.manifest.key_id)
            wanted = {(org, kind) for org in config.tls.allowed_organisations for kind in Mode}
            if missing := wanted - set(indexes.manifest.files):
                names = ", ".join(f"{kind.value} for {org}" for org, kind in sorted(missing))
                raise StoreError(f"the index in {config.index_dir} lacks {names}; rebuild it")
            config.budget_db.parent.mkdir(parents=True, exist_ok=True)
            gate = PolicyGate(Policy.load(config.policy), config.budget_db, config.policy)
            audit = AuditLog.open(config.audit_dir, config.audit_origin)
            prepare_budgets(config.budget_db, audit)  # refuses a store the log contradicts (closes audit)
            rotations = published_after_crash(config, indexes.manifest, key, audit)
        except BaseException:
            indexes.close()
            raise
        submit = WitnessClient(config.witnesses).submit if config.witnesses else None
        runtime = HolderRuntime(
            key=key, indexes=indexes, limits=config.limits, organisation=config.organisation,
            allowed_organisations=frozenset(config.tls.allowed_organisations),
            gate=gate, audit=audit, engine=engine or BatchEngine(),
            keeper=AuditKeeper(audit, config.audit_log, submit),
            key_usage=KeyUsage(config.budget_db.with_name(KEY_USAGE_DB), config.limits.key_evaluation_cap),
            rotations=rotations, epoch_days=config.epoch_days,
        )
        if clock is not None:
            runtime.clock = clock
        try:
            daemon = cls(runtime, config.tls, config.listen, config.metrics_listen)
            follows = config.records is not None and (config.epoch_days is not None or config.issuer is not None)
            daemon.rotator = EpochRotator(config, runtime) if follows else None
            return daemon
        except BaseException:
            audit.close()
            indexes.close()
            raise

    def start(self) -> None:
        self.runtime.audit.append("daemon_started", role="holder", version=__version__)  # before it serves
        if self._metrics_listen:  # bound before health says SERVING, so a ready daemon has its metrics port
            self.metrics_port = self.metrics.serve(self._metrics_listen)
        self._serving.start()
        self.runtime.keeper.start()
        if self.rotator is not None:
            self.rotator.start()
        for (org, kind), f in sorted(self.runtime.indexes.manifest.files.items(), key=lambda i: (i[0][0], i[0][1].value)):
            log.info("serving %s index %s for %s (%d entries)", kind.value, f.digest.hex(), org, f.entries)
        if (stamp := self.runtime.indexes.manifest.issuer_epoch) is not None and stamp.ended(self.runtime.clock()):
            rebuilds = "the daemon rebuilds it from holder.records" if self.rotator is not None else \
                "'blindmatch holder index' rebuilds it (or set holder.records: the daemon then rebuilds by itself)"
            log.warning("the index is over tokens of issuer epoch %s, which has ended: downloads and sessions are "
                        "refused (issuer_epoch_ended) until %s", stamp.name, rebuilds)

    def stop(self, grace: float) -> None:
        """Refuse new calls, let in-flight sessions finish for ``grace`` seconds, then close the audit log."""
        self._serving.begin_shutdown()
        if self.rotator is not None:
            self.rotator.stop()
        self._serving.stop(grace)
        self.servicer.send_watch.close()
        self.metrics.close()
        try:
            self.runtime.audit.append("daemon_stopped", role="holder", version=__version__)
            self.runtime.keeper.stop()  # last summary, shutdown checkpoint, last witness submission
            self.runtime.audit.close()
        except (AuditError, OSError) as exc:  # a full disk must not keep the daemon from stopping
            log.error("could not write daemon_stopped and the shutdown checkpoint to %s: %s",
                      self.runtime.audit.path, exc)
        finally:
            for indexes in (self.runtime.indexes, *self.runtime.retired):
                indexes.close()
            self.runtime.key_usage.close()
