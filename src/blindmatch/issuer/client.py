"""The holder's side of the issuer service: the current epoch, and blind evaluations of its keys.

Usage (the holder's index build)::

    with IssuerClient(address, ca_cert, cert, key) as issuer:
        info = issuer.epoch()
        epoch = parse_epoch(info.epoch, info.not_before, info.expires)
        stage = IssuerTokens(lambda b: issuer.evaluate(epoch.name, b), info.public_key, epoch, engine)

The public key comes from the issuer over mutual TLS (its server certificate is checked
against ``ca_cert``); ``pinned_key`` refuses an epoch key other than the one expected.
Every answer is then checked by the holder against that key's DLEQ proof.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import TracebackType

import grpc

from blindmatch.crypto import voprf
from blindmatch.crypto.group import InvalidElementError
from blindmatch.issuer.service import MAX_MESSAGE_BYTES
from blindmatch.issuer.tokenfile import format_time
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.transport.tls import channel_credentials
from blindmatch.v1 import issuer_pb2 as pb
from blindmatch.v1 import issuer_pb2_grpc as pb_grpc
from blindmatch.vocabulary import BlindmatchError

DEFAULT_TIMEOUT_SECONDS = 120.0


class IssuerError(BlindmatchError):
    """The issuer refused or could not be reached; the message names the issuer and its reason."""


class IssuerClient:
    def __init__(self, address: str, ca_cert: Path, cert: Path, key: Path,
                 timeout: float = DEFAULT_TIMEOUT_SECONDS, server_name: str | None = None) -> None:
        options: list[tuple[str, int | str]] = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        self._address = address
        self._channel = grpc.secure_channel(address, channel_credentials(ca_cert, key, cert, IssuerError), options)
        self._stub = pb_grpc.IssuerStub(self._channel)
        self._timeout = timeout

    def __enter__(self) -> IssuerClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._channel.close()

    def _failed(self, exc: grpc.RpcError) -> IssuerError:
        reason = reason_from_rpc_error(exc)
        details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
        return IssuerError(f"issuer {self._address}: {reason or exc.code().name}: {details}")

    def epoch(self, pinned_key: bytes | None = None, at: datetime | None = None) -> pb.EpochInfo:
        """The current epoch, or with ``at`` the epoch containing that instant (the next one, once the
        issuer announces it). ``pinned_key`` is checked against the current epoch's key only."""
        request = pb.GetEpochRequest(at=format_time(at) if at is not None else "")
        try:
            info: pb.EpochInfo = self._stub.GetEpoch(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise self._failed(exc) from None
        try:
            voprf.load_public_key(info.public_key, what=f"issuer {self._address} epoch {info.epoch} public key")
        except InvalidElementError as exc:
            raise IssuerError(str(exc)) from None
        if pinned_key is not None and at is None and info.public_key != pinned_key:
            raise IssuerError(f"issuer {self._address}: epoch {info.epoch} public key is not the pinned one")
        return info

    def evaluate(self, epoch: str, blinded: bytes) -> tuple[bytes, bytes]:
        try:
            reply = self._stub.BlindEvaluate(pb.BlindEvaluateRequest(epoch=epoch, blinded=blinded), timeout=self._timeout)
        except grpc.RpcError as exc:
            raise self._failed(exc) from None
        return reply.evaluated, reply.proof
