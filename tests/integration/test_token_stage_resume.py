"""The index build's token stage resumes after an interruption, and the result is the same index.

A build interrupted in the token stage (the issuer going away, the process killed with
SIGKILL, a record torn in the middle of its append) resumes from its last finished
batch: it asks the issuer only for the batches it has not got, so the issuer counts
every element once, and the index it commits is byte for byte the one an uninterrupted
build commits.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from blindmatch.crypto.batch import BatchEngine
from blindmatch.holder.config import HolderNodeConfig
from blindmatch.holder.index_build import build_index
from blindmatch.holder.store import read_manifest
from blindmatch.holder.token_spool import TokenSpool, spool_path
from blindmatch.holder.tokens import IssuerTokens
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.evaluation import BlindEvaluator
from tests.helpers.holder_deployment import HOLDER_ORG, Deployment, make_deployment
from tests.helpers.issuer_setup import make_issuer

pytestmark = pytest.mark.timeout(240)
RECORDS = 120
BATCH = 32


class IssuerGone(ConnectionError):
    """Stands in for the issuer becoming unreachable in the middle of a build."""


@pytest.fixture(scope="module")
def engine() -> Iterator[BatchEngine]:
    engine = BatchEngine()
    yield engine
    engine.close()


@pytest.fixture
def deployment(tmp_path: Path) -> tuple[Deployment, IssuerConfig]:
    dep = make_deployment(tmp_path / "holder", records=RECORDS)
    return dep, make_issuer(tmp_path / "issuer", {HOLDER_ORG: RECORDS * 4})


def _stage(config: HolderNodeConfig, evaluator: BlindEvaluator, engine: BatchEngine,
           call: Callable[[bytes], tuple[bytes, bytes]] | None = None) -> IssuerTokens:
    epoch, pk = evaluator.public_key()
    spool = TokenSpool(config.index_dir, epoch.name, pk, BATCH)
    return IssuerTokens(call or (lambda b: evaluator.evaluate(HOLDER_ORG, b, epoch.name)), pk, epoch, engine,
                        batch_elements=BATCH, spool=spool)


def _indexes(config: HolderNodeConfig) -> dict[str, bytes]:
    """The committed index files' contents by organisation and mode."""
    return {f"{org}/{kind.value}": f.path.read_bytes() for (org, kind), f in read_manifest(config.index_dir).files.items()}


def _reference(dep: Deployment, issuer: IssuerConfig, engine: BatchEngine) -> tuple[dict[str, bytes], int]:
    """An uninterrupted build in its own index directory (same holder key): its indexes and elements."""
    config = dataclasses.replace(dep.config, index_dir=dep.root / "reference-index")
    evaluator = BlindEvaluator(issuer, engine)
    try:
        stage = _stage(config, evaluator, engine)
        build_index(dep.root / "records.csv", config, progress=False, engine=engine, tokens=stage)
    finally:
        evaluator.close()
    assert not spool_path(config.index_dir, stage.epoch.name).exists()  # dropped once committed
    return _indexes(config), stage.evaluated


def _used(issuer: IssuerConfig, engine: BatchEngine) -> int:
    evaluator = BlindEvaluator(issuer, engine)
    try:
        return evaluator.used(HOLDER_ORG, evaluator.public_key()[0])
    finally:
        evaluator.close()


def _resume(dep: Deployment, issuer: IssuerConfig, engine: BatchEngine, cluster: str | None = None) -> IssuerTokens:
    evaluator = BlindEvaluator(issuer, engine)
    try:
        stage = _stage(dep.config, evaluator, engine)
        build_index(dep.root / "records.csv", dep.config, progress=False, engine=engine, tokens=stage, cluster=cluster)
    finally:
        evaluator.close()
    return stage


def _goes_away_after(batches: int, evaluator: BlindEvaluator) -> Callable[[bytes], tuple[bytes, bytes]]:
    """An issuer call that answers ``batches`` batches, then finds the issuer unreachable."""
    calls = 0

    def call(blinded: bytes) -> tuple[bytes, bytes]:
        nonlocal calls
        calls += 1
        if calls > batches:
            raise IssuerGone("issuer unreachable")
        return evaluator.evaluate(HOLDER_ORG, blinded, evaluator.public_key()[0].name)

    return call


def test_an_issuer_that_goes_away_midway(deployment: tuple[Deployment, IssuerConfig], engine: BatchEngine) -> None:
    dep, issuer = deployment
    reference, elements = _reference(dep, issuer, engine)
    assert elements > 4 * BATCH  # several batches
    before = _used(issuer, engine)
    evaluator = BlindEvaluator(issuer, engine)
    flaky = _goes_away_after(3, evaluator)
    stage = _stage(dep.config, evaluator, engine, flaky)
    with pytest.raises(IssuerGone):
        build_index(dep.root / "records.csv", dep.config, progress=False, engine=engine, tokens=stage)
    evaluator.close()
    stage.close()
    assert _used(issuer, engine) - before == 3 * BATCH
    resumed = _resume(dep, issuer, engine)
    assert resumed.spool is not None and resumed.spool.replayed == 3 * BATCH  # not asked again
    assert resumed.evaluated == elements - 3 * BATCH
    assert _used(issuer, engine) - before == elements  # every element counted once
    assert _indexes(dep.config) == reference
    assert not resumed.spool.path.exists()


def test_a_lost_answer_is_asked_again_but_not_counted_twice(deployment: tuple[Deployment, IssuerConfig],
                                                            engine: BatchEngine) -> None:
    """The issuer evaluated (and counted) the third batch, but its answer never arrived: the resumed build resends
    that batch with the blinds it kept, so the issuer sees the same elements and does not count them again."""
    dep, issuer = deployment
    reference, elements = _reference(dep, issuer, engine)
    before = _used(issuer, engine)
    evaluator = BlindEvaluator(issuer, engine)
    calls = 0

    def answer_lost(blinded: bytes) -> tuple[bytes, bytes]:
        nonlocal calls
        calls += 1
        answer = evaluator.evaluate(HOLDER_ORG, blinded, evaluator.public_key()[0].name)
        if calls == 3:
            raise IssuerGone("connection lost before the answer arrived")
        return answer

    stage = _stage(dep.config, evaluator, engine, answer_lost)
    with pytest.raises(IssuerGone):
        build_index(dep.root / "records.csv", dep.config, progress=False, engine=engine, tokens=stage)
    evaluator.close()
    stage.close()
    assert _used(issuer, engine) - before == 3 * BATCH  # the lost batch was counted once
    assert stage.spool is not None and stage.spool.blinds.path.exists()
    resumed = _resume(dep, issuer, engine)
    assert resumed.spool is not None and resumed.spool.replayed == 2 * BATCH
    assert _used(issuer, engine) - before == elements  # ... and only once
    assert _indexes(dep.config) == reference
    assert not resumed.spool.path.exists()  # the tokens go; the blinds stay for the epoch
    assert resumed.spool.blinds.path.exists()


def test_a_torn_last_record_is_cut_and_asked_again(deployment: tuple[Deployment, IssuerConfig],
                                                   engine: BatchEngine) -> None:
    """A crash in the middle of an append leaves half a record: it fails its checksum and is asked for again."""
    dep, issuer = deployment
    reference, elements = _reference(dep, issuer, engine)
    evaluator = BlindEvaluator(issuer, engine)
    flaky = _goes_away_after(2, evaluator)
    stage = _stage(dep.config, evaluator, engine, flaky)
    with pytest.raises(IssuerGone):
        build_index(dep.root / "records.csv", dep.config, progress=False, engine=engine, tokens=stage)
    evaluator.close()
    stage.close()
    assert stage.spool is not None
    data = stage.spool.path.read_bytes()
    record = (len(data) - 51) // 2  # header 51 bytes, then two whole records
    stage.spool.path.write_bytes(data[: len(data) - record // 2])  # the second one torn in half
    resumed = _resume(dep, issuer, engine)
    assert resumed.spool is not None and resumed.spool.replayed == BATCH
    assert resumed.evaluated == elements - BATCH
    assert _indexes(dep.config) == reference


def test_a_changed_records_file_replays_only_the_batches_that_are_the_same(
        deployment: tuple[Deployment, IssuerConfig], engine: BatchEngine) -> None:
    dep, issuer = deployment
    evaluator = BlindEvaluator(issuer, engine)
    flaky = _goes_away_after(4, evaluator)
    stage = _stage(dep.config, evaluator, engine, flaky)
    with pytest.raises(IssuerGone):
        build_index(dep.root / "records.csv", dep.config, progress=False, engine=engine, tokens=stage)
    evaluator.close()
    stage.close()
    lines = (dep.root / "records.csv").read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("Alice", "Alicia", 1)  # the first batch is no longer the same
    (dep.root / "records.csv").write_text("".join(lines))
    reference, elements = _reference(dep, issuer, engine)
    resumed = _resume(dep, issuer, engine)
    assert resumed.spool is not None and resumed.spool.replayed == 0
    assert resumed.evaluated == elements
    assert _indexes(dep.config) == reference


_KILLED_BUILD = textwrap.dedent("""\
    import sys, time
    from pathlib import Path
    from blindmatch.crypto.batch import BatchEngine
    from blindmatch.holder.config import load_holder_config
    from blindmatch.holder.index_build import build_index
    from blindmatch.holder.token_spool import TokenSpool
    from blindmatch.holder.tokens import IssuerTokens
    from blindmatch.issuer.config import load_issuer_config
    from blindmatch.issuer.evaluation import BlindEvaluator

    holder_toml, issuer_toml, records, ready, batch, org = sys.argv[1:]
    config, engine = load_holder_config(Path(holder_toml)), BatchEngine(1)
    evaluator = BlindEvaluator(load_issuer_config(Path(issuer_toml)), engine)
    epoch, pk = evaluator.public_key()
    calls = 0

    def call(blinded):
        global calls
        calls += 1
        if calls > 3:  # three batches answered and kept: say so, then hang until killed
            Path(ready).write_text("3")
            time.sleep(600)
        return evaluator.evaluate(org, blinded, epoch.name)

    spool = TokenSpool(config.index_dir, epoch.name, pk, int(batch))
    build_index(Path(records), config, progress=False, engine=engine,
                tokens=IssuerTokens(call, pk, epoch, engine, batch_elements=int(batch), spool=spool))
""")


def test_a_build_killed_with_sigkill_resumes(deployment: tuple[Deployment, IssuerConfig], engine: BatchEngine,
                                             tmp_path: Path) -> None:
    dep, issuer = deployment
    reference, elements = _reference(dep, issuer, engine)
    before = _used(issuer, engine)
    ready = tmp_path / "ready"
    child = subprocess.Popen([sys.executable, "-c", _KILLED_BUILD, str(dep.config_path), str(issuer.seed_file.parent / "issuer.toml"),
                              str(dep.root / "records.csv"), str(ready), str(BATCH), HOLDER_ORG])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, "the build ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert _used(issuer, engine) - before == 3 * BATCH
    resumed = _resume(dep, issuer, engine)
    assert resumed.spool is not None and resumed.spool.replayed == 3 * BATCH
    assert _used(issuer, engine) - before == elements
    assert _indexes(dep.config) == reference


def test_a_spool_others_can_read_is_refused(tmp_path: Path) -> None:
    """The spool holds the holder's own tokens: one that group or others can read is not used."""
    path = spool_path(tmp_path, "2026-12")
    path.write_bytes(b"")
    path.chmod(0o644)
    with pytest.raises(PermissionError, match="readable by others"):
        TokenSpool(tmp_path, "2026-12", bytes(32), BATCH)
    path.unlink()
    TokenSpool(tmp_path, "2026-12", bytes(32), BATCH).close()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.timeout(180)
def test_the_cluster_build_resumes_too(deployment: tuple[Deployment, IssuerConfig], engine: BatchEngine) -> None:
    """``holder index --cluster``: the token stage runs here, the holder's evaluation on Dask; it resumes alike."""
    pytest.importorskip("distributed")
    from distributed import LocalCluster

    dep, issuer = deployment
    reference, elements = _reference(dep, issuer, engine)
    evaluator = BlindEvaluator(issuer, engine)
    flaky = _goes_away_after(2, evaluator)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        stage = _stage(dep.config, evaluator, engine, flaky)
        with pytest.raises(IssuerGone):
            build_index(dep.root / "records.csv", dep.config, progress=False, engine=engine, tokens=stage,
                        cluster=cluster.scheduler_address)
        evaluator.close()
        stage.close()
        resumed = _resume(dep, issuer, engine, cluster.scheduler_address)
    assert resumed.spool is not None and resumed.spool.replayed == 2 * BATCH
    assert resumed.evaluated == elements - 2 * BATCH
    assert _indexes(dep.config) == reference


def test_two_builds_cannot_share_a_spool(tmp_path: Path) -> None:
    first = TokenSpool(tmp_path, "2026-12", bytes(32), BATCH)
    with pytest.raises(BlockingIOError, match="in use by another index build"):
        TokenSpool(tmp_path, "2026-12", bytes(32), BATCH)
    first.close()
    TokenSpool(tmp_path, "2026-12", bytes(32), BATCH).close()


def test_another_build_of_the_same_epoch_is_not_counted_again(deployment: tuple[Deployment, IssuerConfig],
                                                             engine: BatchEngine) -> None:
    """After a committed build the tokens are gone, the blinds stay: the next build of the epoch (a restart that
    dropped a build ahead, a key rotation, a re-run) resends the same blinded batches, answered but not counted."""
    dep, issuer = deployment
    first = _resume(dep, issuer, engine)
    used = _used(issuer, engine)
    assert first.spool is not None and not first.spool.path.exists() and first.spool.blinds.path.exists()
    again = _resume(dep, issuer, engine)
    assert again.spool is not None and again.spool.replayed == 0 and again.evaluated == first.evaluated
    assert _used(issuer, engine) == used
    assert _indexes(dep.config) != {}
    changed = dep.root / "records.csv"
    changed.write_text(changed.read_text().replace("Smith", "Smyth", 1))  # the first batch's keys change
    _resume(dep, issuer, engine)
    assert 0 < _used(issuer, engine) - used < first.evaluated  # that batch is new to the issuer, and counted
