"""The holder daemon's epoch schedule: rotate the key when its epoch ends (``holder.epoch_days``).

From ``holder.epoch_lead_hours`` before the serving key's epoch ends (``core.key_epochs``,
a pure function of the daemon's clock) the daemon builds the next epoch ahead: a fresh
key in ``<key_file>.next`` and every index under it from ``holder.records``, in
``<index_dir>/next-epoch``, neither served nor announced. The first call after the end
(``HolderRuntime.serving``) or the next poll, whichever comes first, commits key and
indexes together (``store.commit_prebuilt``), signs and stores the rotation statement,
writes ``key_rotated`` and ``index_built`` and switches what it serves, so no session is
refused at the boundary; calls in flight finish under the old key.

Without a build ahead (lead 0, a build the index guard refused, a failed switch) the
rotation rebuilds once the epoch has ended, and until the switch sessions against the
ended epoch are refused ``epoch_ended`` (``HolderRuntime.check_epoch``). A failed rebuild
is logged and tried again at the next poll; the ended epoch stays refused meanwhile, so
no key outlives its epoch. A build ahead a crash interrupted is built again from the start.
"""
from __future__ import annotations

import logging
import shutil
import threading
from datetime import datetime, timedelta

from blindmatch.audit import AuditLog
from blindmatch.audit.events import TEXT_MAX
from blindmatch.core.key_epochs import default_prebuild_lead, epoch_ended, epoch_ends_at, prebuild_starts_at
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import format_time, parse_time
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.index_build import IndexBuildError, build_index
from blindmatch.holder.rotation import publish_statement, published_statements, record_build
from blindmatch.holder.runtime import HolderRuntime
from blindmatch.holder.store import (
    IndexManifest,
    OpenIndexes,
    StoreError,
    commit_prebuilt,
    committed_key_id,
    load_committed_key,
    load_key_file,
    next_key_path,
    open_indexes,
    prebuilt_dir,
    read_manifest,
)
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
    """Checks the serving key's epoch every ``poll_seconds``: builds the next one ahead, switches at the end.

    ``_lock`` serialises builds (long); ``_switch_lock`` guards the prebuilt epoch and the
    switch to it (short), so a call that finds the epoch ended waits only for a switch.
    """

    def __init__(self, config: HolderNodeConfig, runtime: HolderRuntime, poll_seconds: float = POLL_SECONDS) -> None:
        if config.epoch_days is None or config.records is None:
            raise ValueError("an epoch schedule needs holder.epoch_days and holder.records")
        self._config = config
        self._epoch_days = config.epoch_days
        self._records = config.records
        self._lead = (default_prebuild_lead(config.epoch_days) if config.epoch_lead_hours is None
                      else timedelta(hours=config.epoch_lead_hours))
        self._runtime = runtime
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._prebuilt: OpenIndexes | None = None
        self._refused_after: bytes | None = None  # the key whose successor the index guard refused
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A prebuild a crash interrupted is never resumed: it is built again from the start.
        shutil.rmtree(prebuilt_dir(config.index_dir), ignore_errors=True)
        runtime.on_epoch_end = self.switch_if_due

    def tick(self) -> bool:
        """Build ahead once the lead time before the epoch's end has begun; rotate once it has ended.

        True when it rotated (switched to the prebuilt epoch or rebuilt under a new key).
        """
        with self._lock:
            rt = self._runtime
            now = rt.clock()
            key, indexes, _ = rt.current()
            valid_from = parse_time(indexes.manifest.valid_from)
            if epoch_ended(valid_from, self._epoch_days, now):
                if not self.switch_if_due() and not self._finish_committed(key):
                    self._rotate(now)
                return True
            if (self._lead and self._prebuilt is None and self._refused_after != key.key_id
                    and now >= prebuild_starts_at(valid_from, self._epoch_days, self._lead)):
                self._prebuild(key, epoch_ends_at(valid_from, self._epoch_days))
            return False

    def rotate(self, now: datetime) -> None:
        """Start the next epoch at ``now`` whatever the schedule says (the path every scheduled rotation takes)."""
        with self._lock:
            self._discard_prebuilt()
            self._rotate(now)

    def _prebuild(self, key: HolderKey, ends: datetime) -> None:
        """Build the next epoch's key and indexes, valid from ``ends``, kept unpublished and unserved."""
        config = self._config
        staged = prebuilt_dir(config.index_dir)
        shutil.rmtree(staged, ignore_errors=True)
        try:
            with configured_tokens(config) as tokens:
                report = build_index(self._records, config, progress=False, engine=self._runtime.engine,
                                     rotate_key=True, tokens=tokens, now=ends, stage_in=staged)
        except IndexBuildError as exc:  # the guard (or the records file) refuses: rebuild at the end, as without a lead
            shutil.rmtree(staged, ignore_errors=True)
            self._refused_after = key.key_id
            manifest = self._runtime.current()[1].manifest
            log.error("the next epoch's indexes were not built ahead (%s); at the end of epoch %d sessions are "
                      "refused epoch_ended until the rebuild succeeds", exc, manifest.epoch)
            self._runtime.audit.append("epoch_prebuild_refused", epoch=manifest.epoch + 1, reason=str(exc)[:TEXT_MAX])
            return
        assert report.manifest is not None
        opened = open_indexes(staged)
        with self._switch_lock:
            self._prebuilt = opened
        log.info("epoch %d built ahead (key id %s); it is served from %s", report.manifest.epoch,
                 report.manifest.key_id.hex(), format_time(ends))

    def switch_if_due(self) -> bool:
        """Switch to the prebuilt epoch if the serving one has ended; True when it switched.

        A switch that fails before its commit (the key or index changed meanwhile, a disk
        error) is logged and dropped: the ended epoch is then refused until the rotator's
        rebuild, as without a lead. One that fails after it is finished by the next poll
        (``_finish_committed``), as a restart would.
        """
        rt = self._runtime
        with self._switch_lock:
            staged, self._prebuilt = self._prebuilt, None
            if staged is None:
                return False
            key, indexes, _ = rt.current()
            if not epoch_ended(parse_time(indexes.manifest.valid_from), self._epoch_days, rt.clock()):
                self._prebuilt = staged
                return False
            try:
                self._switch(key, indexes.manifest, staged)
            except (StoreError, OSError) as exc:
                staged.close()
                log.error("the switch to the epoch built ahead failed (%s); the next check finishes or rebuilds it", exc)
                return False
            return True

    def _switch(self, key: HolderKey, current: IndexManifest, staged: OpenIndexes) -> None:
        config, manifest = self._config, staged.manifest
        pending = next_key_path(config.key_file)
        if (manifest.previous_key_id != key.key_id or committed_key_id(config.index_dir) != current.key_id
                or not pending.exists() or load_key_file(pending).key_id != manifest.key_id):
            raise StoreError("the key or index changed since the next epoch was built ahead")
        committed = commit_prebuilt(config.index_dir, staged)
        try:
            new_key = load_committed_key(config.key_file, config.index_dir, manifest.key_id)
            self._publish(new_key, committed)
        except BaseException:
            committed.close()
            raise

    def _finish_committed(self, key: HolderKey) -> bool:
        """Serve a next epoch already committed on disk (a switch that failed after its commit); True if so."""
        config = self._config
        if committed_key_id(config.index_dir) == key.key_id or read_manifest(config.index_dir).previous_key_id != key.key_id:
            return False
        opened = open_indexes(config.index_dir)
        try:
            self._publish(load_committed_key(config.key_file, config.index_dir, opened.manifest.key_id), opened)
        except BaseException:
            opened.close()
            raise
        return True

    def _discard_prebuilt(self) -> None:
        with self._switch_lock:
            if self._prebuilt is not None:
                self._prebuilt.close()
                self._prebuilt = None
        shutil.rmtree(prebuilt_dir(self._config.index_dir), ignore_errors=True)

    def _rotate(self, now: datetime) -> None:
        rt = self._runtime
        config = self._config
        with configured_tokens(config) as tokens:
            report = build_index(self._records, config, progress=False, engine=rt.engine, rotate_key=True,
                                 tokens=tokens, now=now)
        manifest = report.manifest
        assert manifest is not None
        key = load_committed_key(config.key_file, config.index_dir, manifest.key_id)
        opened = open_indexes(config.index_dir)
        if opened.manifest.key_id != key.key_id:  # another build committed meanwhile: never pair them wrongly
            opened.close()
            raise StoreError("the index changed during the scheduled rotation; restart the holder")
        self._publish(key, opened)

    def _publish(self, key: HolderKey, opened: OpenIndexes) -> None:
        """Sign and store the rotation statement, audit it and serve the new key and indexes together."""
        rt, config, manifest = self._runtime, self._config, opened.manifest
        statement = publish_statement(config.index_dir, manifest, key.public_key, config.organisation, rt.audit)
        record_build(rt.audit, manifest, True, statement)
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
        """Stop the schedule (a build in progress finishes first); an unswitched build ahead is closed."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._switch_lock:
            if self._prebuilt is not None:
                self._prebuilt.close()
                self._prebuilt = None
