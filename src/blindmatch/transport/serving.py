"""Every daemon's foreground loop: start, serve until SIGTERM or SIGINT, stop (SIGHUP optional)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


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
