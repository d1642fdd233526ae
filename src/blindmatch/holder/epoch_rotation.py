"""The holder daemon's epoch schedule: rotate the key when its epoch ends (``holder.epoch_days``).

When the serving key's epoch ends (``core.key_epochs``, a pure function of the daemon's
clock), the daemon builds its indexes again from ``holder.records`` under a fresh key,
commits key and indexes together (``holder.index_build``), signs and stores the rotation
statement, writes ``key_rotated`` and ``index_built``, and switches what it serves. Until
the switch, sessions against the ended epoch are refused ``epoch_ended``
(``HolderRuntime.check_epoch``); calls in flight finish under the old key. A failed
rebuild (records file missing, index guard) is logged and tried again at the next poll;
the ended epoch stays refused meanwhile, so no key outlives its epoch.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from blindmatch.audit import AuditLog
from blindmatch.core.key_epochs import epoch_ended
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import parse_time
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.index_build import build_index
from blindmatch.holder.rotation import publish_statement, published_statements, record_build
from blindmatch.holder.runtime import HolderRuntime
from blindmatch.holder.store import IndexManifest, StoreError, load_committed_key, open_indexes
from blindmatch.holder.tokens import configured_tokens

log = logging.getLogger("blindmatch.holder")

POLL_SECONDS = 30.0


def published_after_crash(config: HolderNodeConfig, manifest: IndexManifest, key: HolderKey,
                          audit: AuditLog) -> tuple[bytes, ...]:
    """The stored statements, once the statement of the served key is made if a crash left it unmade.

    Like ``prepare_budgets`` it closes ``audit`` when it fails, since the daemon will not start.
    """
    try:
        publish_statement(config.index_dir, manifest, key.public_key, config.organisation, audit)
        return published_statements(config.index_dir)
    except BaseException:
        audit.close()
        raise


class EpochRotator:
    """Checks the serving key's epoch every ``poll_seconds`` and rotates once it has ended."""

    def __init__(self, config: HolderNodeConfig, runtime: HolderRuntime, poll_seconds: float = POLL_SECONDS) -> None:
        if config.epoch_days is None or config.records is None:
            raise ValueError("an epoch schedule needs holder.epoch_days and holder.records")
        self._config = config
        self._epoch_days = config.epoch_days
        self._records = config.records
        self._runtime = runtime
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> bool:
        """Rotate if the serving key's epoch has ended at the runtime's clock; True when it rotated."""
        with self._lock:
            rt = self._runtime
            now = rt.clock()
            _key, indexes, _ = rt.serving()
            if not epoch_ended(parse_time(indexes.manifest.valid_from), self._epoch_days, now):
                return False
            self._rotate(now)
            return True

    def rotate(self, now: datetime) -> None:
        """Start the next epoch at ``now`` whatever the schedule says (the path every scheduled rotation takes)."""
        with self._lock:
            self._rotate(now)

    def _rotate(self, now: datetime) -> None:
        rt = self._runtime
        config = self._config
        with configured_tokens(config) as tokens:
            report = build_index(self._records, config, progress=False, engine=rt.engine, rotate_key=True,
                                 tokens=tokens, now=now)
        manifest = report.manifest
        assert manifest is not None
        key = load_committed_key(config.key_file, config.index_dir, manifest.key_id)
        statement = publish_statement(config.index_dir, manifest, key.public_key, config.organisation, rt.audit)
        record_build(rt.audit, manifest, True, statement)
        opened = open_indexes(config.index_dir)
        if opened.manifest.key_id != key.key_id:  # another build committed meanwhile: never pair them wrongly
            opened.close()
            raise StoreError("the index changed during the scheduled rotation; restart the holder")
        rt.switch(key, opened, published_statements(config.index_dir))
        log.info("epoch %d began: rotated the OPRF key (key id %s) and serve the indexes built under it",
                 manifest.epoch, key.key_id.hex())

    def _loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # a failed rebuild must not stop the schedule: the ended epoch stays refused
                log.exception("scheduled key rotation failed; sessions against the ended epoch are refused "
                              "until it succeeds (next try in %g s)", self._poll)
            if self._stop.wait(self._poll):
                return

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="holder-epochs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
