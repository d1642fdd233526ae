"""One server interceptor for what every call must pass before a servicer sees it.

* **TLS 1.3** (``transport.tls.tls_problem``): checked on every call of every service,
  the health service included, since gRPC cannot refuse TLS 1.2 in the handshake.
* **Decoding**: gRPC's own deserialiser fails before any servicer runs and answers
  ``INTERNAL 'Exception deserializing request!'``, which tells a client nothing and
  looks like a server bug. The interceptor takes every method's bytes instead
  (``request_deserializer=None``) and decodes them itself: an undecodable message is
  ``INVALID_ARGUMENT``, reason ``bad_request``.
* **Size**: gRPC's own limit answers ``RESOURCE_EXHAUSTED`` with no reason, so the
  server lets gRPC accept up to :func:`transport_ceiling` bytes and this interceptor
  enforces the advertised limit with reason ``limit_exceeded``.
* **Unexpected failures** of a unary-request method (a budget store that fails under a
  running holder, say): gRPC would answer ``UNKNOWN`` with the exception's text, so the
  peer gets ``INTERNAL``, reason ``internal``, and a fixed message instead, and the
  daemon's log gets the traceback (issue 17).

For a streaming request the failure is raised from the request iterator as a
``ProtocolError``, so the servicer ends (and audits) the session the way it ends any
protocol error; for a unary request the call is aborted before the servicer runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc

from blindmatch.core.errors import ProtocolError
from blindmatch.transport.status import abort, status_of
from blindmatch.transport.tls import tls_problem
from blindmatch.vocabulary import Reason

# How far above the advertised message limit gRPC itself still accepts a message, so
# that the interceptor, not gRPC, refuses it (with a reason). Beyond it gRPC refuses
# with RESOURCE_EXHAUSTED and no reason, and never buffers more than this per call.
CEILING_FACTOR = 4
INTERNAL_MESSAGE = "internal error; see the server's log"

log = logging.getLogger("blindmatch.transport")

Decoder = Callable[[bytes], Any]


def transport_ceiling(max_message_bytes: int) -> int:
    """The ``grpc.max_receive_message_length`` of a server that advertises ``max_message_bytes``."""
    return max_message_bytes * CEILING_FACTOR


def decode(raw: bytes, deserializer: Decoder | None, limit: int) -> Any:
    """``raw`` decoded, or a ``ProtocolError`` naming what is wrong with it (never its content)."""
    if len(raw) > limit:
        raise ProtocolError(Reason.LIMIT_EXCEEDED, f"a message of {len(raw)} bytes is above max_message_bytes ({limit})")
    if deserializer is None:
        return raw
    try:
        return deserializer(raw)
    except Exception:  # protobuf raises DecodeError, and others for some malformed inputs
        raise ProtocolError(Reason.BAD_REQUEST, f"a message of {len(raw)} bytes does not decode as the expected protobuf") from None


def _check_tls(context: grpc.ServicerContext) -> None:
    problem = tls_problem(context.auth_context())
    if problem:
        abort(context, status_of(Reason.TLS_VERSION), Reason.TLS_VERSION, problem)


def _internal_error(context: grpc.ServicerContext) -> NoReturn:
    """Re-raise grpc's own abort (the call has its status); turn anything else into ``INTERNAL``."""
    if context.code() is not None:
        raise  # the abort grpc raised: this runs only inside an except block
    log.exception("a call failed unexpectedly")
    abort(context, grpc.StatusCode.INTERNAL, Reason.INTERNAL, INTERNAL_MESSAGE)


def _contained_stream(behaviour: Callable[..., Iterator[Any]], request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
    try:
        yield from behaviour(request, context)
    except Exception:
        _internal_error(context)


class CallGuard(grpc.ServerInterceptor):  # type: ignore[misc]  # grpc is untyped
    """TLS 1.3, decodable and not oversized: for every method of every service on the server."""

    def __init__(self, max_message_bytes: int, require_tls13: bool = True) -> None:
        self._limit = max_message_bytes
        self._require_tls13 = require_tls13

    def intercept_service(self, continuation: Callable[[grpc.HandlerCallDetails], Any],
                          handler_call_details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        deserializer = handler.request_deserializer
        if handler.request_streaming:
            behaviour = handler.stream_stream or handler.stream_unary
            wrapped = self._streaming(behaviour, deserializer)
            factory = grpc.stream_stream_rpc_method_handler if handler.response_streaming else grpc.stream_unary_rpc_method_handler
        else:
            behaviour = handler.unary_stream or handler.unary_unary
            wrapped = self._unary(behaviour, deserializer, handler.response_streaming)
            factory = grpc.unary_stream_rpc_method_handler if handler.response_streaming else grpc.unary_unary_rpc_method_handler
        return factory(wrapped, request_deserializer=None, response_serializer=handler.response_serializer)

    def _unary(self, behaviour: Callable[..., Any], deserializer: Decoder | None, streaming: bool) -> Callable[..., Any]:
        def guarded(raw: bytes, context: grpc.ServicerContext) -> Any:
            if self._require_tls13:
                _check_tls(context)
            try:
                request = decode(raw, deserializer, self._limit)
            except ProtocolError as exc:
                abort(context, status_of(exc.code), exc.code, exc.message)
            if streaming:
                return _contained_stream(behaviour, request, context)
            try:
                return behaviour(request, context)
            except Exception:
                _internal_error(context)
        return guarded

    def _streaming(self, behaviour: Callable[..., Any], deserializer: Decoder | None) -> Callable[..., Any]:
        limit = self._limit

        def decoded(requests: Iterator[bytes]) -> Iterator[Any]:
            for raw in requests:
                yield decode(raw, deserializer, limit)

        def guarded(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
            if self._require_tls13:
                _check_tls(context)
            return behaviour(decoded(requests), context)
        return guarded
