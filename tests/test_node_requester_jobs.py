"""Requester jobs against a live holder: concurrency, the index cache, and RESULTS.csv rules."""

from __future__ import annotations

import csv
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from blindmatch import synthetic
from blindmatch.audit import AuditLog
from blindmatch.core.outputs import Mode
from blindmatch.crypto.batch import BatchEngine
from blindmatch.demo import HolderProcess, Workspace, build_index, compare_results, create_workspace
from blindmatch.node.jobs import JobStore
from blindmatch.node.requester_config import load_requester_config
from blindmatch.node.requester_runner import JobRunner

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    ws = create_workspace(tmp_path_factory.mktemp("jobs"), holder_records=2_000, queries=240,
                          matching={"batch_size": 32, "window": 3})
    build_index(ws)
    yield ws


@pytest.fixture(scope="module")
def holder(workspace: Workspace) -> Iterator[HolderProcess]:
    process = HolderProcess(workspace.holder_config, workspace.root / "logs")
    process.start()
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def runner(workspace: Workspace) -> Iterator[JobRunner]:
    config = load_requester_config(workspace.requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    engine = BatchEngine()
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        yield JobRunner(config, JobStore(config.store_path), audit, engine)
    engine.close()


def _query_file(workspace: Workspace, path: Path, seed: int) -> list[bool]:
    """A shuffled copy of the workspace's queries; returns the truth in the new order."""
    with workspace.queries.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    truth = json.loads(workspace.truth.read_text())
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["name", "address", "order_date"])
        writer.writeheader()
        writer.writerows(rows[i] for i in order)
    return [truth[i] for i in order]


def test_eight_concurrent_jobs_all_correct(workspace: Workspace, holder: HolderProcess, runner: JobRunner, tmp_path: Path) -> None:
    jobs = []
    for n in range(8):
        truth = _query_file(workspace, tmp_path / f"q{n}.csv", seed=n)
        job, resumed = runner.submit(tmp_path / f"q{n}.csv", tmp_path / f"r{n}.csv", Mode.MEMBERSHIP)
        assert not resumed
        jobs.append((job.id, truth))
    states: dict[str, str] = {}
    threads = [threading.Thread(target=lambda j=j: states.__setitem__(j, runner.run(j).exit_state)) for j, _ in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(states.values()) == {"succeeded"}
    for n, (_, truth) in enumerate(jobs):
        counts = compare_results(tmp_path / f"r{n}.csv", truth)
        assert counts["expected_matches"] > 0
        assert counts["matches"] == counts["expected_matches"]
        assert counts["false_matches"] == counts["missed_matches"] == counts["ineligible_answered"] == 0


def test_results_keep_columns_and_mark_ineligible_and_invalid(runner: JobRunner, holder: HolderProcess, tmp_path: Path) -> None:
    person = synthetic.generate_people(1, 2025)[0]  # the holder's first record
    queries = tmp_path / "q.csv"
    queries.write_text(
        "case,name,address,order_date\n"
        f'A1,"{person["name"]}","{person["address"]}",2024-01-02\n'
        f'A2,"{person["name"]}","{person["address"]}",2999-01-01\n'
        f'A3,"{person["name"]}","{person["address"]}",\n'
        'A4,"Nobody Atall","",2024-01-02\n',
        encoding="utf-8",
    )
    job, _ = runner.submit(queries, tmp_path / "r.csv", Mode.MEMBERSHIP)
    assert runner.run(job.id).exit_state == "succeeded"
    with (tmp_path / "r.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["case", "name", "address", "order_date", "matched", "tier", "status"]
    assert [(r["case"], r["matched"], r["tier"], r["status"]) for r in rows] == [
        ("A1", "true", "name+address+unit", "ok"),
        ("A2", "", "", "ineligible: order_date in the future"),
        ("A3", "", "", "ineligible: order_date missing"),
        ("A4", "", "", "invalid: address"),
    ]
    # Held-back rows were never sent: only A1's two tier keys were evaluated.
    assert runner.store.get(job.id).elements_done == 2


def test_rebuilt_holder_index_is_downloaded_before_the_next_job(
    workspace: Workspace, holder: HolderProcess, runner: JobRunner, tmp_path: Path
) -> None:
    newcomer = synthetic.generate_people(1, 99_999)[0]
    queries = tmp_path / "q.csv"
    queries.write_text(f'name,address,order_date\n"{newcomer["name"]}","{newcomer["address"]}",2024-05-06\n', encoding="utf-8")
    first, _ = runner.submit(queries, tmp_path / "before.csv", Mode.MEMBERSHIP)
    assert runner.run(first.id).exit_state == "succeeded"
    old = runner.store.cached_index("membership")
    assert old is not None and "false" in (tmp_path / "before.csv").read_text()

    records = tmp_path / "records.csv"
    records.write_text(
        workspace.records.read_text(encoding="utf-8") + f'"{newcomer["name"]}","{newcomer["address"]}"\n', encoding="utf-8"
    )
    build_index(workspace, records)
    holder.terminate()
    holder.start()

    second, _ = runner.submit(queries, tmp_path / "after.csv", Mode.MEMBERSHIP)
    assert runner.run(second.id).exit_state == "succeeded"
    new = runner.store.cached_index("membership")
    assert new is not None and new.digest != old.digest and not old.path.exists()
    assert "true" in (tmp_path / "after.csv").read_text()



def test_cardinality_mode_reports_only_the_count(workspace: Workspace, holder: HolderProcess, tmp_path: Path) -> None:
    """``requester match --mode cardinality`` prints the number of eligible matching records, nothing per record."""
    import subprocess

    from blindmatch.demo import blindmatch_command

    truth = json.loads(workspace.truth.read_text())
    base = blindmatch_command("requester", "match", str(workspace.queries), "--config", str(workspace.requester_config),
                              "--json", "--no-progress")
    membership = subprocess.run([*base, "--mode", "membership", "--out", str(tmp_path / "r.csv")],
                                capture_output=True, text=True, timeout=120)
    assert membership.returncode == 0, membership.stderr[-2000:]
    counts = compare_results(tmp_path / "r.csv", truth)
    assert counts["matches"] == counts["expected_matches"] > 0

    before = set(tmp_path.iterdir())
    done = subprocess.run([*base, "--mode", "cardinality"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "cardinality" and summary["state"] == "succeeded"
    assert summary["matches"] == counts["expected_matches"]
    assert summary["ineligible"] == counts["ineligible_records"] > 0
    assert "out" not in summary and set(tmp_path.iterdir()) == before
