"""``holder serve``'s loop: start the daemon, serve until SIGTERM or SIGINT, drain, stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.service import HolderDaemon


def run_daemon(config: HolderNodeConfig, announce: Callable[[str], None]) -> int:
    """Serve until SIGTERM or SIGINT, then drain in-flight sessions and exit 0; SIGHUP reloads the policy."""
    daemon = HolderDaemon.from_config(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        # SIGHUP reloads the policy at once (the file is also polled); SIGTERM and SIGINT stop.
        announce(daemon.runtime.gate.reload_on_signal()) if signum == signal.SIGHUP else stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        daemon.start()
        host = config.listen.rsplit(":", 1)[0]
        announce(f"listening on {host}:{daemon.port}")
        while not stop.wait(1.0):  # a timed wait lets the signal handler run promptly
            pass
        announce(f"stopping: draining sessions for up to {config.limits.shutdown_grace_seconds:g} s")
        daemon.stop(config.limits.shutdown_grace_seconds)
        daemon.runtime.engine.close()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    announce("stopped")
    return 0
