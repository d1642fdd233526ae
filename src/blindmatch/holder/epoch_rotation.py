"""The holder daemon's epoch schedule: rotate the key when its epoch ends (``holder.epoch_days``),
and refresh the index over eligibility tokens when the issuer's epoch ends (``[holder.issuer]``).

The next boundary is the earlier of the two ends (``holder.epoch_schedule``). From
``holder.epoch_lead_hours`` before it (a pure function of the daemon's clock) the daemon
builds what serves from the boundary ahead, from ``holder.records``, in
``<index_dir>/next-epoch``, neither served nor announced: for a key epoch a fresh key in
``<key_file>.next`` and every index under it; for an issuer epoch every index over the
tokens of the epoch that begins there, obtained from the issuer (which evaluates under
the next epoch's key shortly before it starts), under the same key. The first call after
the boundary (``HolderRuntime.serving``) or the next poll, whichever comes first, writes
``key_rotated`` (for a key epoch) and ``index_built`` (audit before effect), commits the
indexes (and key) together (``store.commit_prebuilt``), stores the rotation statement if
the key changed, and switches what it serves, so no session is refused at the boundary;
calls in flight finish on what they started with.

A build ahead that fails for a reason that may pass (the issuer unreachable or not yet
announcing the next epoch, a disk error) is tried again with a doubling delay, in the
daemon's clock, from one poll to ``RETRY_LONGEST``; the current epoch is served meanwhile.

Without a build ahead (lead 0, a build the index guard refused, a failed switch, an
issuer still unreachable at the boundary) the daemon rebuilds once the epoch has ended,
and until the switch sessions against the ended epoch are refused ``epoch_ended``
(``HolderRuntime.check_epoch``) or, for an issuer epoch, ``issuer_epoch_ended``
(``holder.tokens.epoch_refusal``). A failed rebuild
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
from blindmatch.core.keys import HolderKey
from blindmatch.core.rotation import format_time
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.epoch_schedule import Boundary, next_boundary, prebuild_lead, retry_delay
from blindmatch.holder.index_build import IndexBuildError, build_index
from blindmatch.holder.rotation import make_statement, publish_statement, published_statements, record_build
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
RETRY_LONGEST = timedelta(minutes=15)  # the longest wait between two tries of a failed build ahead


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
    """Checks the served index's next boundary every ``poll_seconds``: builds ahead, switches at it.

    ``_lock`` serialises builds (long); ``_switch_lock`` guards the prebuilt epoch and the
    switch to it (short), so a call that finds the boundary passed waits only for a switch.
    """

    def __init__(self, config: HolderNodeConfig, runtime: HolderRuntime, poll_seconds: float = POLL_SECONDS) -> None:
        if config.records is None or (config.epoch_days is None and config.issuer is None):
            raise ValueError("an epoch schedule needs holder.records and holder.epoch_days or [holder.issuer]")
        self._config = config
        self._records = config.records
        self._lead = prebuild_lead(config.epoch_days, config.epoch_lead_hours)
        self._runtime = runtime
        self._poll = poll_seconds
        self._lock = threading.Lock()
        self._switch_lock = threading.Lock()
        self._prebuilt: OpenIndexes | None = None
        self._refused_for: datetime | None = None  # the boundary whose build ahead the index guard refused
        self._failures = 0  # builds ahead failed in a row (the issuer unreachable, say)
        self._retry_at: datetime | None = None  # no build ahead before this (daemon clock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A prebuild a crash interrupted is never resumed: it is built again from the start.
        shutil.rmtree(prebuilt_dir(config.index_dir), ignore_errors=True)
        runtime.on_epoch_end = self.switch_if_due

    def boundary(self, manifest: IndexManifest) -> Boundary | None:
        """The next boundary of the index ``manifest`` describes under this daemon's schedule."""
        return next_boundary(manifest, self._config.epoch_days, self._config.issuer is not None)

    def tick(self) -> bool:
        """Build ahead once the lead time before the next boundary has begun; rotate once it has passed.

        True when it rotated (switched to the prebuilt epoch or rebuilt).
        """
        with self._lock:
            rt = self._runtime
            now = rt.clock()
            key, indexes, _ = rt.current()
            boundary = self.boundary(indexes.manifest)
            if boundary is None:
                return False
            if now >= boundary.at:
                if not self.switch_if_due() and not self._finish_committed(key, indexes.manifest):
                    self._rebuild(now, boundary)
                return True
            if (self._lead and self._prebuilt is None and self._refused_for != boundary.at
                    and now >= boundary.at - self._lead and (self._retry_at is None or now >= self._retry_at)):
                self._prebuild(key, boundary, now)
            return False

    def rotate(self, now: datetime) -> None:
        """Start the next key epoch at ``now`` whatever the schedule says (the path every scheduled rotation takes)."""
        with self._lock:
            self._discard_prebuilt()
            self._rebuild(now, Boundary(now, rotates_key=True, issuer_epoch_ends=False))

    def _prebuild(self, key: HolderKey, boundary: Boundary, now: datetime) -> None:
        """Build what serves from ``boundary``, kept unpublished and unserved."""
        config = self._config
        staged = prebuilt_dir(config.index_dir)
        shutil.rmtree(staged, ignore_errors=True)
        manifest = self._runtime.current()[1].manifest
        try:
            # The next issuer epoch's tokens only if it begins there (else the current epoch's, pin checked).
            with configured_tokens(config, boundary.at if boundary.issuer_epoch_ends else None) as tokens:
                report = build_index(self._records, config, progress=False, engine=self._runtime.engine,
                                     rotate_key=boundary.rotates_key, tokens=tokens, now=boundary.at, stage_in=staged)
        except IndexBuildError as exc:  # the guard (or the records file) refuses: rebuild at the end, as without a lead
            shutil.rmtree(staged, ignore_errors=True)
            self._refused_for = boundary.at
            log.error("the indexes serving from %s were not built ahead (%s); from then sessions are refused "
                      "until the rebuild succeeds", format_time(boundary.at), exc)
            fields = {"issuer_epoch": manifest.issuer_epoch.name} if manifest.issuer_epoch is not None else {}
            self._runtime.audit.append("epoch_prebuild_refused", epoch=manifest.epoch + boundary.rotates_key,
                                       reason=str(exc)[:TEXT_MAX], **fields)
            return
        except Exception as exc:  # the issuer unreachable or not yet announcing its next epoch, a full disk
            shutil.rmtree(staged, ignore_errors=True)
            self._failures += 1
            wait = retry_delay(self._failures, timedelta(seconds=self._poll), RETRY_LONGEST)
            self._retry_at = now + wait
            log.warning("building the indexes serving from %s ahead failed (%s); the current ones serve meanwhile, "
                        "next try in %d s", format_time(boundary.at), exc, wait.total_seconds())
            return
        assert report.manifest is not None
        self._failures, self._retry_at = 0, None
        opened = open_indexes(staged)
        with self._switch_lock:
            self._prebuilt = opened
        issuer = f", over issuer epoch {opened.manifest.issuer_epoch.name}" if opened.manifest.issuer_epoch else ""
        log.info("epoch %d built ahead (key id %s%s); it is served from %s", report.manifest.epoch,
                 report.manifest.key_id.hex(), issuer, format_time(boundary.at))

    def switch_if_due(self) -> bool:
        """Switch to the prebuilt epoch if the served one has reached its boundary; True when it switched.

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
            key, indexes, rotations = rt.current()
            boundary = self.boundary(indexes.manifest)
            if boundary is None or rt.clock() < boundary.at:
                self._prebuilt = staged
                return False
            try:
                if boundary.rotates_key:
                    self._switch(key, indexes.manifest, staged)
                else:
                    self._switch_issuer_epoch(key, indexes.manifest, staged, rotations)
            except (StoreError, OSError) as exc:
                staged.close()
                log.error("the switch to the epoch built ahead failed (%s); the next check finishes or rebuilds it", exc)
                return False
            return True

    def _switch(self, key: HolderKey, current: IndexManifest, staged: OpenIndexes) -> None:
        config, manifest = self._config, staged.manifest
        pending = next_key_path(config.key_file)
        next_key = load_key_file(pending) if pending.exists() else None
        if (manifest.previous_key_id != key.key_id or committed_key_id(config.index_dir) != current.key_id
                or next_key is None or next_key.key_id != manifest.key_id):
            raise StoreError("the key or index changed since the next epoch was built ahead")
        # Audit before effect (issue 17): the switch's entries are durable before its commit.
        statement = make_statement(config.index_dir, manifest, next_key.public_key, config.organisation,
                                   self._runtime.audit)
        record_build(self._runtime.audit, manifest, True, statement)
        committed = commit_prebuilt(config.index_dir, staged)
        try:
            new_key = load_committed_key(config.key_file, config.index_dir, manifest.key_id)
            self._publish(new_key, committed)
        except BaseException:
            committed.close()
            raise

    def _switch_issuer_epoch(self, key: HolderKey, current: IndexManifest, staged: OpenIndexes,
                             rotations: tuple[bytes, ...]) -> None:
        """Serve the indexes built ahead over the new issuer epoch's tokens, under the same key."""
        config, manifest = self._config, staged.manifest
        if manifest.key_id != key.key_id or read_manifest(config.index_dir) != current:
            raise StoreError("the key or index changed since the next issuer epoch was built ahead")
        record_build(self._runtime.audit, manifest, False, None)  # audit before effect (issue 17)
        committed = commit_prebuilt(config.index_dir, staged)
        self._serve_issuer_epoch(key, committed, rotations)

    def _serve_issuer_epoch(self, key: HolderKey, opened: OpenIndexes, rotations: tuple[bytes, ...]) -> None:
        self._runtime.switch(key, opened, rotations)
        stamp = opened.manifest.issuer_epoch
        log.info("issuer epoch %s began: serving the indexes built over its tokens (key id %s unchanged)",
                 stamp.name if stamp is not None else "-", key.key_id.hex())

    def _finish_committed(self, key: HolderKey, served: IndexManifest) -> bool:
        """Serve what a switch that failed after its commit left committed on disk; True if so."""
        config = self._config
        committed = read_manifest(config.index_dir)
        rotated = committed.previous_key_id == key.key_id and committed_key_id(config.index_dir) != key.key_id
        refreshed = committed.key_id == key.key_id and committed.issuer_epoch != served.issuer_epoch
        if committed == served or not (rotated or refreshed):
            return False
        opened = open_indexes(config.index_dir)
        try:
            if rotated:
                self._publish(load_committed_key(config.key_file, config.index_dir, opened.manifest.key_id), opened)
            else:
                self._serve_issuer_epoch(key, opened, self._runtime.current()[2])
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

    def _rebuild(self, now: datetime, boundary: Boundary) -> None:
        """Rebuild in place, past the boundary (no build ahead): the ended epoch is refused until it commits."""
        rt = self._runtime
        config = self._config
        key, _, rotations = rt.current()
        with configured_tokens(config) as tokens:
            report = build_index(self._records, config, progress=False, engine=rt.engine,
                                 rotate_key=boundary.rotates_key, tokens=tokens, now=now,
                                 audit=True)  # audited before its commit (issue 17)
        manifest = report.manifest
        assert manifest is not None
        if boundary.rotates_key:
            key = load_committed_key(config.key_file, config.index_dir, manifest.key_id)
        opened = open_indexes(config.index_dir)
        if opened.manifest.key_id != key.key_id:  # another build committed meanwhile: never pair them wrongly
            opened.close()
            raise StoreError("the index changed during the scheduled rebuild; restart the holder")
        if boundary.rotates_key:
            self._publish(key, opened)
        else:
            self._serve_issuer_epoch(key, opened, rotations)

    def _publish(self, key: HolderKey, opened: OpenIndexes) -> None:
        """Store the rotation statement (audited with the build, before its commit) and serve the
        new key and indexes together."""
        rt, config, manifest = self._runtime, self._config, opened.manifest
        publish_statement(config.index_dir, manifest, key.public_key, config.organisation, rt.audit)
        rt.switch(key, opened, published_statements(config.index_dir))
        log.info("epoch %d began: rotated the OPRF key (key id %s) and serve the indexes built under it",
                 manifest.epoch, key.key_id.hex())

    def _loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:  # a failed rebuild must not stop the schedule: the ended epoch stays refused
                log.exception("scheduled rebuild failed; sessions against the ended epoch are refused "
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
