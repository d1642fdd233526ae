"""Mapping between protocol/policy failures and gRPC statuses, shared by both daemons.

A gRPC status code alone is too coarse for a client to act on (FAILED_PRECONDITION
covers a stale index, a rotated key and an expired request alike), so every abort
also carries the stable reason code in the trailing metadata key ``blindmatch-reason``
and as the ``reason:`` prefix of the status details.
"""

from __future__ import annotations

from typing import NoReturn

import grpc

from blindmatch.core.errors import ProtocolError

REASON_METADATA_KEY = "blindmatch-reason"

STATUS_FOR_PROTOCOL_CODE: dict[str, grpc.StatusCode] = {
    # The peers cannot talk as configured: retrying the same call will not help,
    # refreshing state (GetInfo, DownloadIndex, schema) will.
    "bad_version": grpc.StatusCode.FAILED_PRECONDITION,
    "key_mismatch": grpc.StatusCode.FAILED_PRECONDITION,
    "schema_mismatch": grpc.StatusCode.FAILED_PRECONDITION,
    "index_mismatch": grpc.StatusCode.FAILED_PRECONDITION,
    # A size limit of the holder (batch, session, message).
    "limit_exceeded": grpc.StatusCode.RESOURCE_EXHAUSTED,
    # The peer sent something wrong: a client bug or an attack, never retryable as is.
    "invalid_element": grpc.StatusCode.INVALID_ARGUMENT,
    "bad_request": grpc.StatusCode.INVALID_ARGUMENT,
    "commitment_mismatch": grpc.StatusCode.INVALID_ARGUMENT,
    "transcript_mismatch": grpc.StatusCode.INVALID_ARGUMENT,
    "unexpected_message": grpc.StatusCode.INVALID_ARGUMENT,
    # Policy refusals normally carry their own reason and status; this is the fallback
    # for a core-level refusal without one.
    "refused": grpc.StatusCode.PERMISSION_DENIED,
}


def status_for_protocol_error(error: ProtocolError) -> grpc.StatusCode:
    return STATUS_FOR_PROTOCOL_CODE[error.code]


def status_from_name(name: str) -> grpc.StatusCode:
    """``grpc.StatusCode`` for a status name such as ``"PERMISSION_DENIED"`` (policy refusals)."""
    try:
        return grpc.StatusCode[name]
    except KeyError:
        raise ValueError(f"unknown gRPC status name {name!r}") from None


def abort(context: grpc.ServicerContext, status: grpc.StatusCode, reason: str, message: str) -> NoReturn:
    """End the RPC with ``status``, the reason in trailing metadata and ``"reason: message"`` as details."""
    context.set_trailing_metadata(((REASON_METADATA_KEY, reason),))
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
