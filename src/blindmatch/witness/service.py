"""The witness daemon: gRPC over mutual TLS (TLS 1.3 only, ``transport.guard``), health service, shutdown.

The servicer only adapts: it takes the peer organisation from the verified client
certificate, hands the request body to :class:`Witness`, and turns a refusal into a
gRPC status with the reason in the ``blindmatch-reason`` trailing metadata (the
convention of the other daemons) and, for a size conflict, the witness's latest size
in ``blindmatch-witness-size`` (C2SP's 409 response body).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NoReturn

import grpc

from blindmatch import __version__
from blindmatch.keyfile import KeyFileError
from blindmatch.transport.context import peer_organisation
from blindmatch.transport.serving import DaemonServer, guarded_server, serve_until_stopped
from blindmatch.transport.status import REASON_METADATA_KEY
from blindmatch.v1 import witness_pb2 as pb
from blindmatch.v1 import witness_pb2_grpc as pb_grpc
from blindmatch.vocabulary import Reason
from blindmatch.witness import protocol as p
from blindmatch.witness.config import WitnessConfig
from blindmatch.witness.core import Witness, WitnessRefusal
from blindmatch.witness.keys import load_witness_key
from blindmatch.witness.state import WitnessState

log = logging.getLogger("blindmatch.witness")

SERVICE_NAME = "blindmatch.v1.Witness"
SIZE_METADATA_KEY = "blindmatch-witness-size"
MAX_MESSAGE_BYTES = p.MAX_BODY_BYTES + 1024
SHUTDOWN_GRACE_SECONDS = 5.0


class WitnessStartError(Exception):
    """The witness cannot start: an unsafe key file, a missing file, a busy address."""


def _abort(context: grpc.ServicerContext, reason: str, message: str, size: int | None) -> NoReturn:
    metadata = [(REASON_METADATA_KEY, reason)]
    if size is not None:
        metadata.append((SIZE_METADATA_KEY, str(size)))
    context.set_trailing_metadata(tuple(metadata))
    context.abort(grpc.StatusCode[Reason(reason).status], f"{reason}: {message}")
    raise AssertionError("grpc context.abort returned")


class WitnessServicer(pb_grpc.WitnessServicer):
    def __init__(self, witness: Witness) -> None:
        self._witness = witness

    def AddCheckpoint(self, request: pb.AddCheckpointRequest, context: grpc.ServicerContext) -> pb.AddCheckpointResponse:
        # TLS 1.3 and the request's size and encoding were checked by transport.guard.CallGuard.
        peer = peer_organisation(context)
        try:
            line = self._witness.add_checkpoint(request.body, peer)
        except WitnessRefusal as refusal:
            log.warning("refused a checkpoint from %r: %s", peer, refusal)
            _abort(context, refusal.reason, str(refusal), refusal.latest_size)
        except Exception:
            log.exception("AddCheckpoint from %r failed", peer)
            _abort(context, Reason.INTERNAL, "internal error; see the witness's log", None)
        return pb.AddCheckpointResponse(cosignatures=line.encode())


class WitnessDaemon:
    """One running witness: the key, the state directory and the gRPC server."""

    def __init__(self, config: WitnessConfig, clock: Callable[[], datetime] | None = None) -> None:
        try:
            key = load_witness_key(config.key_file)
        except KeyFileError as exc:
            raise WitnessStartError(f"witness.key_file: {exc}") from None
        credentials = config.tls.credentials(WitnessStartError)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.state = WitnessState(config.state_dir)
        try:
            self.witness = Witness(config, key, self.state, self._clock)
        except BaseException:
            self.state.close()
            raise
        server = guarded_server(MAX_MESSAGE_BYTES, workers=8, thread_prefix="witness-rpc", max_calls=8)
        pb_grpc.add_WitnessServicer_to_server(WitnessServicer(self.witness), server)
        self._serving = DaemonServer(server, SERVICE_NAME)
        self.port = self._serving.bind(config.listen, credentials)
        if not self.port:
            self.state.close()
            raise WitnessStartError(f"cannot listen on {config.listen}: the address is in use or not available")

    def start(self) -> None:
        self._serving.start()
        self.state.record("started", self._clock(), version=__version__)

    def stop(self, grace: float = SHUTDOWN_GRACE_SECONDS) -> None:
        self._serving.stop(grace)
        self.state.record("stopped", self._clock(), version=__version__)
        self.state.close()


def run_daemon(config: WitnessConfig, announce: Callable[[str], None]) -> int:
    """Serve until SIGTERM or SIGINT, then finish in-flight calls and exit 0."""
    daemon = WitnessDaemon(config)

    def start() -> str:
        daemon.start()
        return f"witness {config.name} listening on {config.listen.rsplit(':', 1)[0]}:{daemon.port}"

    return serve_until_stopped(start, daemon.stop, announce)
