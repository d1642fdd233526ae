"""An in-process requester job runner, as the requester daemon builds one, for tests that drive jobs directly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.crypto.batch import BatchEngine
from blindmatch.requester.config import RequesterConfig, load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import JobRunner


@contextmanager
def job_runner(config: RequesterConfig | Path, engine: BatchEngine | None = None) -> Iterator[JobRunner]:
    """A runner over ``config`` (loaded, or the path of a requester.toml) with its state
    directory made and its audit log open, closed afterwards; on ``engine``, or on a batch
    engine of its own that it closes too."""
    if isinstance(config, Path):
        config = load_requester_config(config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    own = engine is None
    engine = engine or BatchEngine()
    try:
        with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
            yield JobRunner(config, JobStore(config.store_path), audit, engine)
    finally:
        if own:
            engine.close()
