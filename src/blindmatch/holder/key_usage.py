"""The lifetime cap of each OPRF key: how many elements it may evaluate in all (SPEC.md section 7.6).

Every evaluation hands the requester one more static Diffie-Hellman sample under the
key (RFC 9497 section 7.2.3), so a key's total answers are bounded, whatever the
per-period budgets allow. The count lives in its own SQLite file beside the budget
database; a session reserves its element count before the policy decides and gives it
back if the policy refuses, so concurrent sessions can never overshoot the cap.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from blindmatch.policy.errors import PolicyRefusal
from blindmatch.vocabulary import Reason

KEY_USAGE_DB = "key_usage.sqlite3"  # beside the budget database
_SCHEMA = "CREATE TABLE IF NOT EXISTS key_usage (key_id TEXT PRIMARY KEY, evaluations INTEGER NOT NULL)"


class KeyUsage:
    """Evaluations reserved per key id, durable across restarts."""

    def __init__(self, path: Path, cap: int) -> None:
        self.cap = cap
        # One connection shared by the daemon's threads: the lock serialises their
        # transactions; BEGIN IMMEDIATE serialises them with other processes.
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)

    def used(self, key_id: bytes) -> int:
        """Evaluations counted against ``key_id`` so far (callers of ``_reserve`` hold the lock)."""
        row = self._db.execute("SELECT evaluations FROM key_usage WHERE key_id = ?", (key_id.hex(),)).fetchone()
        return int(row[0]) if row else 0

    def reserve(self, key_id: bytes, count: int) -> None:
        """Count ``count`` more evaluations against the key, or refuse with ``key_spent``."""
        with self._lock:
            self._reserve(key_id, count)

    def _reserve(self, key_id: bytes, count: int) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            used = self.used(key_id)
            if used + count > self.cap:
                raise PolicyRefusal(
                    Reason.KEY_SPENT,
                    f"the holder's OPRF key {key_id.hex()[:16]}... has answered {used} of its lifetime cap of "
                    f"{self.cap} evaluations; the holder must rotate its key before serving {count} more",
                )
            self._db.execute(
                "INSERT INTO key_usage (key_id, evaluations) VALUES (?, ?) "
                "ON CONFLICT(key_id) DO UPDATE SET evaluations = evaluations + excluded.evaluations",
                (key_id.hex(), count),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def release(self, key_id: bytes, count: int) -> None:
        """Give back a reservation whose session the policy refused (nothing was evaluated)."""
        with self._lock:
            self._db.execute("UPDATE key_usage SET evaluations = MAX(0, evaluations - ?) WHERE key_id = ?",
                             (count, key_id.hex()))

    def close(self) -> None:
        self._db.close()
