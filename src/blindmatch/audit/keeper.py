"""Keeps a daemon's audit log bounded and witnessed, off the sessions' path.

One background thread per daemon (SPEC.md 10.6, 14.7):

* flushes the refusal counter (:mod:`audit.refusals`) as one summary entry per period, so
  a flood of unsigned or malformed calls grows the log by a bounded amount;
* writes a checkpoint when ``every_entries`` entries or ``every_seconds`` seconds are not
  yet covered by one, instead of a checkpoint per call;
* submits each new checkpoint to the witnesses (``submit``, the daemon passes
  ``WitnessClient.submit``), retrying with exponential backoff while a witness is down,
  so a slow or unreachable witness never slows a session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from blindmatch.audit.log import AuditLog
from blindmatch.audit.refusals import RefusalCounter

log = logging.getLogger("blindmatch.audit")

Submit = Callable[[AuditLog], object]


@dataclass(frozen=True)
class KeeperSettings:
    """How often the log is checkpointed and summarised, and how witnesses are retried."""

    every_entries: int = 1000  # checkpoint once this many entries are uncovered...
    every_seconds: float = 60.0  # ...or the oldest uncovered one is this old
    summary_seconds: float = 60.0  # one refusal summary per period at most
    max_individual_refusals: int = 100  # signed refusals logged one by one per period
    retry_min_seconds: float = 1.0
    retry_max_seconds: float = 300.0


class AuditKeeper:
    """The background thread described in the module docstring."""

    def __init__(self, audit: AuditLog, settings: KeeperSettings, submit: Submit | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.audit = audit
        self.settings = settings
        self.refusals = RefusalCounter(audit, settings.max_individual_refusals)
        self._submit = submit
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._submitted_size = -1
        self._retry_at = 0.0
        self._backoff = settings.retry_min_seconds
        self._summary_due = clock() + settings.summary_seconds
        self._uncovered_since: float | None = None
        self.last_error: str = ""

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-keeper", daemon=True)
        self._thread.start()

    def checkpoint_now(self) -> None:
        """Ask for the newest checkpoint to be submitted soon (after a session closed)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Flush the summary, checkpoint, make one last submission attempt, and end the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.refusals.flush()
        self.audit.checkpoint()
        self._try_submit(final=True)

    def tick(self) -> None:
        """One round of maintenance; the thread calls it about every second (tests call it directly)."""
        now = self._clock()
        if now >= self._summary_due:
            self.refusals.flush()
            self._summary_due = now + self.settings.summary_seconds
        self._checkpoint_if_due(now)
        if now >= self._retry_at:
            self._try_submit(final=False)

    def _checkpoint_if_due(self, now: float) -> None:
        latest = self.audit.latest_checkpoint()
        uncovered = self.audit.refreshed_size() - (latest.size if latest else 0)
        if uncovered <= 0:
            self._uncovered_since = None
            return
        if self._uncovered_since is None:
            self._uncovered_since = now
        if uncovered >= self.settings.every_entries or now - self._uncovered_since >= self.settings.every_seconds:
            self.audit.checkpoint()
            self._uncovered_since = None

    def _try_submit(self, final: bool) -> None:
        latest = self.audit.latest_checkpoint()
        if self._submit is None or latest is None or latest.size == self._submitted_size:
            return
        try:
            self._submit(self.audit)
        except Exception as exc:  # a witness down or refusing must not stop the daemon
            self.last_error = str(exc)
            self._retry_at = self._clock() + self._backoff
            log.warning("witness submission of size %d failed (retry in %.0f s): %s",
                        latest.size, self._backoff, exc)
            if not final:
                self._backoff = min(self._backoff * 2, self.settings.retry_max_seconds)
            return
        self._submitted_size = latest.size
        self._backoff = self.settings.retry_min_seconds
        self._retry_at = 0.0
        self.last_error = ""

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.tick()
            except Exception:
                log.exception("audit maintenance failed; retrying")


def keeper_settings(table: object, where: str) -> KeeperSettings:
    """Parse a configuration table of :class:`KeeperSettings` keys; errors name ``where.key``."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: must be a table")
    defaults = KeeperSettings()
    allowed = set(KeeperSettings.__dataclass_fields__)
    for key in table:
        if key not in allowed:
            raise ValueError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    values: dict[str, float | int] = {}
    for key in sorted(allowed):
        default = getattr(defaults, key)
        value = table.get(key, default)
        if isinstance(default, int):
            if type(value) is not int or value < 1:
                raise ValueError(f"{where}.{key}: must be an integer >= 1")
        elif isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{where}.{key}: must be a number > 0")
        values[key] = type(default)(value)
    settings = KeeperSettings(**values)  # type: ignore[arg-type]
    if settings.retry_max_seconds < settings.retry_min_seconds:
        raise ValueError(f"{where}.retry_max_seconds: must be >= retry_min_seconds")
    return settings
