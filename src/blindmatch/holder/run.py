"""``holder serve``'s loop: start the daemon, serve until SIGTERM or SIGINT, drain, stop."""

from __future__ import annotations

from collections.abc import Callable

from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.service import HolderDaemon
from blindmatch.transport.serving import serve_until_stopped


def run_daemon(config: HolderNodeConfig, announce: Callable[[str], None]) -> int:
    """Serve until SIGTERM or SIGINT, then drain in-flight sessions and exit 0; SIGHUP reloads the policy."""
    daemon = HolderDaemon.from_config(config)

    def start() -> str:
        try:
            daemon.start()  # writes daemon_started before it serves: a full audit disk stops it here
        except BaseException:
            daemon.stop(0)
            daemon.runtime.engine.close()
            raise
        return f"listening on {config.listen.rsplit(':', 1)[0]}:{daemon.port}"

    def stop() -> None:
        announce(f"stopping: draining sessions for up to {config.limits.shutdown_grace_seconds:g} s")
        daemon.stop(config.limits.shutdown_grace_seconds)
        daemon.runtime.engine.close()

    # SIGHUP reloads the policy at once (the file is also polled).
    return serve_until_stopped(start, stop, announce, on_hangup=daemon.runtime.gate.reload_on_signal)
