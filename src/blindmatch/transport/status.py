"""gRPC statuses and the reason metadata of every failed call, shared by both daemons.

A gRPC status code alone is too coarse for a client to act on (FAILED_PRECONDITION
covers a stale index, a rotated key and an expired request alike), so every abort
also carries the stable reason code (``blindmatch.vocabulary.Reason``) in the trailing
metadata key ``blindmatch-reason`` and as the ``reason:`` prefix of the status details.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from blindmatch.vocabulary import Reason

REASON_METADATA_KEY = "blindmatch-reason"


def status_of(reason: Reason) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` the vocabulary gives ``reason``."""
    return grpc.StatusCode[reason.status]


def abort(context: grpc.ServicerContext, status: grpc.StatusCode, reason: Reason, message: str) -> NoReturn:
    """End the RPC with ``status``, the reason in trailing metadata and ``"reason: message"`` as details."""
    context.set_trailing_metadata(((REASON_METADATA_KEY, str(reason)),))
    context.abort(status, f"{reason}: {message}")
    raise AssertionError("grpc context.abort returned")  # abort always raises


def reason_from_rpc_error(error: grpc.RpcError) -> str:
    """The blindmatch reason code of a failed call, or ``""`` if the server gave none.

    Reads the ``blindmatch-reason`` trailing metadata; transport failures (handshake,
    connection loss) and gRPC's own errors have none.
    """
    trailing = getattr(error, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    for key, value in metadata or ():
        if key == REASON_METADATA_KEY:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""
