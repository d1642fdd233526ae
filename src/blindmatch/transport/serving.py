"""What every daemon shares: its gRPC server with the health service, and its foreground
loop (start, serve until SIGTERM or SIGINT, stop; SIGHUP optional)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from blindmatch.transport.guard import CallGuard, transport_ceiling


def guarded_server(max_message_bytes: int, workers: int, thread_prefix: str, max_calls: int) -> grpc.Server:
    """A daemon's gRPC server over mutual TLS: every call through ``CallGuard`` (TLS 1.3, decoding,
    ``max_message_bytes`` with a reason), at most ``max_calls`` admitted at once, on ``workers``
    threads. SO_REUSEPORT is off, so a second daemon on the same port fails to start instead
    of silently sharing its connections."""
    return grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix=thread_prefix),
        interceptors=[CallGuard(max_message_bytes)],
        options=[("grpc.max_receive_message_length", transport_ceiling(max_message_bytes)),
                 ("grpc.max_send_message_length", max_message_bytes), ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=max_calls,
    )


class DaemonServer:
    """A daemon's gRPC server and its standard health service (``grpc.health.v1``).

    Every daemon lives the same way: it binds one mutual-TLS port, reports SERVING for
    the server ("") and its own service once started, and on stop reports NOT_SERVING
    first (so load balancers and probes turn away) before in-flight calls get ``grace``
    seconds to finish.
    """

    def __init__(self, server: grpc.Server, service_name: str,
                 health_servicer: health.HealthServicer | None = None) -> None:
        self.server = server
        self.service_name = service_name
        self.health = health_servicer if health_servicer is not None else health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)

    def bind(self, listen: str, credentials: grpc.ServerCredentials) -> int:
        """The port bound on ``listen``, or 0 where the address is in use or not available."""
        try:
            return int(self.server.add_secure_port(listen, credentials))
        except RuntimeError:  # grpc's "Failed to bind" (address in use, not local, no permission)
            return 0

    def bind_local(self, target: str) -> int:
        """An unencrypted ``target`` only its owner can reach (the requester's unix socket); 0 if not bound."""
        try:
            return int(self.server.add_insecure_port(target))
        except RuntimeError:
            return 0

    def start(self) -> None:
        self.server.start()
        for name in ("", self.service_name):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    def begin_shutdown(self) -> None:
        """Report NOT_SERVING, so probes and balancers turn away, while calls are still served:
        a daemon may wind its own work down before ``stop`` (which calls this first anyway)."""
        self.health.enter_graceful_shutdown()

    def stop(self, grace: float) -> None:
        self.begin_shutdown()  # a second call is a no-op
        self.server.stop(grace).wait()


def serve_until_stopped(
    start: Callable[[], str],
    stop: Callable[[], None],
    announce: Callable[[str], None],
    on_hangup: Callable[[], str] | None = None,
) -> int:
    """Run ``start`` (it returns the line to announce), wait for SIGTERM or SIGINT, run ``stop``; exit 0.

    With ``on_hangup``, SIGHUP calls it and announces its answer instead of stopping.
    The previous signal handlers are restored whatever happens.
    """
    stopping = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP and on_hangup is not None:
            announce(on_hangup())
        else:
            stopping.set()

    signals = (signal.SIGTERM, signal.SIGINT, *((signal.SIGHUP,) if on_hangup is not None else ()))
    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        announce(start())
        while not stopping.wait(1.0):  # a timed wait lets the signal handler run promptly
            pass
        stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    announce("stopped")
    return 0
