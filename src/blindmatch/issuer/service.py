"""The issuer daemon: gRPC over mutual TLS 1.3, health service, audit log, clean shutdown.

The servicer only adapts: it takes the caller's organisation from its verified client
certificate and hands the batch to :class:`BlindEvaluator`, which decides (configured
holders only, within their allowance) and audits. A refusal ends the call with the
reason's gRPC status and the reason in ``blindmatch-reason`` trailing metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import NoReturn

import grpc

from blindmatch import __version__
from blindmatch.crypto.batch import BatchEngine
from blindmatch.identity import identity_problem
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.evaluation import MAX_BATCH_ELEMENTS, BlindEvaluator, EvaluationRefused
from blindmatch.issuer.tokenfile import format_time, parse_time
from blindmatch.transport.context import peer_organisation
from blindmatch.transport.serving import DaemonServer, guarded_server, serve_until_stopped
from blindmatch.transport.status import abort, status_of
from blindmatch.v1 import issuer_pb2 as pb
from blindmatch.v1 import issuer_pb2_grpc as pb_grpc
from blindmatch.vocabulary import BlindmatchError, Reason

log = logging.getLogger("blindmatch.issuer")

SERVICE_NAME = "blindmatch.v1.Issuer"
MAX_MESSAGE_BYTES = MAX_BATCH_ELEMENTS * 32 + 4096
SHUTDOWN_GRACE_SECONDS = 5.0


class IssuerStartError(BlindmatchError):
    """The issuer cannot start: no [issuer.tls], an unsafe key file, a busy address."""


def _abort(context: grpc.ServicerContext, reason: Reason, message: str) -> NoReturn:
    abort(context, status_of(reason), reason, message)


class IssuerServicer(pb_grpc.IssuerServicer):
    def __init__(self, evaluator: BlindEvaluator, name: str) -> None:
        self._evaluator = evaluator
        self._name = name

    def _peer(self, context: grpc.ServicerContext) -> str:
        # TLS 1.3 and the request's size and encoding were checked by transport.guard.CallGuard.
        peer = peer_organisation(context)
        if not peer:
            _abort(context, Reason.ORGANISATION_NOT_ALLOWED, "the client certificate names no organisation")
        if identity_problem(peer):
            # No configured holder has such a name, and the audit log could not record it.
            _abort(context, Reason.ORGANISATION_NOT_ALLOWED, "the client certificate's organisation is not an identifier")
        return peer

    def GetEpoch(self, request: pb.GetEpochRequest, context: grpc.ServicerContext) -> pb.EpochInfo:
        self._peer(context)
        if not request.at:
            epoch, pk = self._evaluator.public_key()
        else:
            try:
                at = parse_time(request.at)
            except ValueError:
                _abort(context, Reason.BAD_REQUEST, f"at {request.at[:40]!r} is not of the form YYYY-MM-DDTHH:MM:SSZ")
            served = self._evaluator.epoch_at(at)
            if served is None:
                current = self._evaluator.public_key()[0]
                _abort(context, Reason.KEY_MISMATCH, f"no epoch served for {request.at}: the current one is "
                       f"{current.name}, and the next is announced only shortly before it starts")
            epoch, pk = served
        return pb.EpochInfo(issuer=self._name, epoch=epoch.name, not_before=format_time(epoch.not_before),
                            expires=format_time(epoch.expires), public_key=pk)

    def BlindEvaluate(self, request: pb.BlindEvaluateRequest, context: grpc.ServicerContext) -> pb.BlindEvaluateReply:
        peer = self._peer(context)
        try:
            evaluated, proof = self._evaluator.evaluate(peer, request.blinded, request.epoch)
        except EvaluationRefused as refusal:
            log.warning("refused a blind evaluation for %r: %s", peer, refusal)
            _abort(context, refusal.reason, str(refusal))
        except Exception:
            log.exception("BlindEvaluate for %r failed", peer)
            _abort(context, Reason.INTERNAL, "internal error; see the issuer's log")
        return pb.BlindEvaluateReply(evaluated=evaluated, proof=proof)


class IssuerDaemon:
    """One running issuer: its evaluator (seed, state, audit log) and the gRPC server."""

    def __init__(self, config: IssuerConfig, engine: BatchEngine, clock: Callable[[], datetime] | None = None) -> None:
        if config.tls is None:
            raise IssuerStartError("issuer.tls: missing; 'serve' needs the issuer's TLS certificate and client CA")
        credentials = config.tls.credentials(IssuerStartError)
        self.evaluator = BlindEvaluator(config, engine, clock=clock)
        server = guarded_server(MAX_MESSAGE_BYTES, workers=4, thread_prefix="issuer-rpc", max_calls=8)
        pb_grpc.add_IssuerServicer_to_server(IssuerServicer(self.evaluator, config.name), server)
        self._serving = DaemonServer(server, SERVICE_NAME)
        self.port = self._serving.bind(config.listen, credentials)
        if not self.port:
            self.evaluator.close()
            raise IssuerStartError(f"cannot listen on {config.listen}: the address is in use or not available")

    def start(self) -> None:
        self._serving.start()

    def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        self._serving.stop(grace)
        self.evaluator.close()


def run_daemon(config: IssuerConfig, announce: Callable[[str], None]) -> int:
    """Serve until SIGTERM or SIGINT, then finish in-flight calls and exit 0."""
    engine = BatchEngine()
    daemon = IssuerDaemon(config, engine)

    def start() -> str:
        daemon.start()
        return f"issuer {config.name} listening on {config.listen.rsplit(':', 1)[0]}:{daemon.port} ({__version__})"

    try:
        return serve_until_stopped(start, daemon.stop, announce)
    finally:
        engine.close()
