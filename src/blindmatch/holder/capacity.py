"""How big the holder's gRPC server is: threads, admitted calls and channel arguments.

gRPC Python holds one pool thread per call for as long as the call lasts. Long-lived
calls (Match, DownloadIndex, health Watch) are bounded by their slots
(``transport.streams``), so a pool of those slots plus :data:`SHORT_CALL_THREADS` always
has threads left for GetInfo and health checks, however many streams peers hold open.
"""

from __future__ import annotations

from blindmatch.holder.config import HolderLimits
from blindmatch.transport.guard import transport_ceiling

# Threads beyond the Match and download slots: GetInfo and health checks always find one.
SHORT_CALL_THREADS = 8
HEALTH_WATCHERS = 2  # concurrent grpc.health.v1 Watch streams
# Calls gRPC admits beyond the pool; they wait for a thread (short calls free one soon).
QUEUED_CALLS = 32


def downloads_per_organisation(limits: HolderLimits) -> int:
    """Index downloads one organisation may hold: never all of them (while there are two), so
    one requester reading its downloads slowly cannot keep every other from its index. (The
    configuration has no bound of its own for them; Match streams have theirs.)"""
    return max(1, min(limits.max_sessions_per_organisation, limits.max_concurrent_downloads - 1))


def worker_threads(limits: HolderLimits) -> int:
    """The pool: every stream slot, the health watchers, and the threads kept for short calls."""
    return limits.max_concurrent_sessions + limits.max_concurrent_downloads + HEALTH_WATCHERS + SHORT_CALL_THREADS


def admitted_calls(limits: HolderLimits) -> int:
    """``maximum_concurrent_rpcs``: beyond it gRPC answers RESOURCE_EXHAUSTED at once instead of queueing unboundedly."""
    return worker_threads(limits) + QUEUED_CALLS


def server_options(limits: HolderLimits) -> list[tuple[str, int]]:
    """gRPC channel arguments of the holder's server.

    * Message sizes: gRPC accepts up to ``transport_ceiling(max_message_bytes)``, so that
      ``CallGuard`` refuses anything above the advertised limit with a reason (SPEC 9.1).
    * ``so_reuseport`` off: gRPC sets SO_REUSEPORT by default, so a second holder on the
      same port would start and silently share the connections; it must fail instead.
    * Keepalive: requesters ping every 20 s during a call (a cardinality session can sit
      silent while the holder evaluates), so pings down to 10 s apart are allowed without
      data (the default, 5 min, would answer them with GOAWAY "too_many_pings"), none
      outside calls. The holder pings too, so that a requester that vanished without
      closing its connection is noticed and its session is ended and logged.
    """
    return [
        ("grpc.max_receive_message_length", transport_ceiling(limits.max_message_bytes)),
        ("grpc.max_send_message_length", limits.max_message_bytes),
        ("grpc.so_reuseport", 0),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
