"""What both daemons' Prometheus metrics share: a registry of their own and a loopback endpoint.

Each daemon object has its own ``CollectorRegistry`` (not prometheus-client's global
one), so several daemons in one process (tests, the pilot) never mix their counts.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

# Session durations: from a tiny session on loopback to a large one over a slow link.
SESSION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class MetricsEndpoint:
    """A registry and the HTTP server that serves it on ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._server: Any = None

    def serve(self, listen: str) -> int:
        """Serve on ``listen`` (``HOST:PORT``, loopback: the configs check it); the port bound."""
        host, port = listen.rsplit(":", 1)
        self._server, _ = start_http_server(int(port), addr=host.strip("[]"), registry=self.registry)
        bound: int = self._server.server_port
        return bound

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
