"""Requester jobs against a live holder: concurrency, the index cache, and RESULTS.csv rules."""

from __future__ import annotations

import csv
import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.job_runner import job_runner

from blindmatch.normalize import default_schema
from blindmatch.pilot import synthetic
from blindmatch.pilot.demo import compare_results
from blindmatch.pilot.processes import HolderProcess, build_index
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.holder_client import SESSION_FINISH_GRACE_SECONDS
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import JobRunner
from blindmatch.vocabulary import Mode
from tests.helpers.officials import match_approved, run_approved

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
    with job_runner(workspace.requester_config) as made:
        yield made


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
    threads = [threading.Thread(target=lambda j=j: states.__setitem__(j, run_approved(workspace, runner, j).exit_state)) for j, _ in jobs]
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


def test_results_keep_columns_and_mark_ineligible_and_invalid(
    workspace: Workspace, runner: JobRunner, holder: HolderProcess, tmp_path: Path
) -> None:
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
    assert run_approved(workspace, runner, job.id).exit_state == "succeeded"
    with (tmp_path / "r.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["case", "name", "address", "order_date", "matched", "tier", "confirms", "status"]
    assert rows[0]["confirms"] == "true"
    assert [(r["case"], r["matched"], r["tier"], r["status"]) for r in rows] == [
        ("A1", "true", "name+address+unit", "ok"),
        ("A2", "", "", "ineligible: order_date in the future"),
        ("A3", "", "", "ineligible: order_date missing"),
        ("A4", "", "", "invalid: address"),
    ]
    # Held-back rows were never sent: only A1's tier keys were evaluated.
    assert runner.store.get(job.id).elements_done == len(default_schema().match_keys(person, "requester"))


def test_rebuilt_holder_index_is_downloaded_before_the_next_job(
    workspace: Workspace, holder: HolderProcess, runner: JobRunner, tmp_path: Path
) -> None:
    newcomer = synthetic.generate_people(1, 99_999)[0]
    queries = tmp_path / "q.csv"
    queries.write_text(f'name,address,order_date\n"{newcomer["name"]}","{newcomer["address"]}",2024-05-06\n', encoding="utf-8")
    first, _ = runner.submit(queries, tmp_path / "before.csv", Mode.MEMBERSHIP)
    assert run_approved(workspace, runner, first.id).exit_state == "succeeded"
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
    assert run_approved(workspace, runner, second.id).exit_state == "succeeded"
    new = runner.store.cached_index("membership")
    assert new is not None and new.digest != old.digest and not old.path.exists()
    assert "true" in (tmp_path / "after.csv").read_text()



def test_cardinality_mode_reports_only_the_count(workspace: Workspace, holder: HolderProcess, tmp_path: Path) -> None:
    """``requester match --mode cardinality`` prints the number of eligible matching records, nothing per record."""

    from blindmatch.pilot.processes import blindmatch_command

    truth = json.loads(workspace.truth.read_text())
    base = blindmatch_command("requester", "match", str(workspace.queries), "--config", str(workspace.requester_config),
                              "--json", "--no-progress")
    membership = match_approved(workspace, [*base, "--mode", "membership", "--out", str(tmp_path / "r.csv")])
    assert membership.returncode == 0, membership.stderr[-2000:]
    counts = compare_results(tmp_path / "r.csv", truth)
    assert counts["matches"] == counts["expected_matches"] > 0

    before = set(tmp_path.iterdir())
    done = match_approved(workspace, [*base, "--mode", "cardinality"])
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "cardinality" and summary["state"] == "succeeded"
    # cardinality mode sends each record's strongest-tier key only, so it counts exact matches
    assert summary["matches"] == _strongest_tier_matches(tmp_path / "r.csv")
    assert summary["ineligible"] == counts["ineligible_records"] > 0
    assert "out" not in summary and set(tmp_path.iterdir()) == before


def _strongest_tier_matches(results: Path) -> int:
    """Distinct strongest-tier keys among the rows of a membership RESULTS.csv matched at that tier:
    what cardinality mode counts (records written differently but normalised alike count once)."""
    schema = default_schema()
    strongest = schema.tier_names()[0]
    with results.open(encoding="utf-8", newline="") as handle:
        return len({schema.match_keys(row, "requester")[0][1] for row in csv.DictReader(handle) if row["tier"] == strongest})


def _stopped_after_first_batch(
    workspace: Workspace, runner: JobRunner, queries: Path, out: Path, mode: Mode = Mode.MEMBERSHIP
) -> str:
    """Submit and run a job, stopped at its first committed batch as a daemon's SIGTERM would;
    returns its id. Its sessions are small, so finishing the open one leaves the job mid-way."""
    import dataclasses

    stop = threading.Event()
    small = dataclasses.replace(runner.config, matching=dataclasses.replace(runner.config.matching, session_max_records=32))
    stopper = JobRunner(small, runner.store, runner.audit, runner.engine, stop)
    job, _ = stopper.submit(queries, out, mode)
    outcome = run_approved(workspace, stopper, job.id, lambda p: stop.set() if p.phase == "match" and p.done > 0 else None)
    assert outcome.exit_state == "stopped"
    assert 0 < outcome.job.elements_done < outcome.job.preparation.elements_total, "the job was not interrupted mid-way"
    return job.id


def test_resumed_job_judges_eligibility_as_of_its_first_day(
    workspace: Workspace, holder: HolderProcess, runner: JobRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Resumed years later, every record would be too old; the job must still finish as prepared."""
    from datetime import timedelta

    from blindmatch.requester import runner as requester_runner

    _query_file(workspace, tmp_path / "q.csv", seed=11)
    full, _ = runner.submit(tmp_path / "q.csv", tmp_path / "full.csv", Mode.MEMBERSHIP)
    assert run_approved(workspace, runner, full.id).exit_state == "succeeded"

    job_id = _stopped_after_first_batch(workspace, runner, tmp_path / "q.csv", tmp_path / "resumed.csv")
    prepared_on = runner.store.get(job_id).preparation.on
    assert prepared_on is not None
    monkeypatch.setattr(requester_runner, "_today", lambda: prepared_on + timedelta(days=20 * 365))
    outcome = run_approved(workspace, runner, job_id)
    assert outcome.exit_state == "succeeded", outcome.job.error
    assert (tmp_path / "resumed.csv").read_bytes() == (tmp_path / "full.csv").read_bytes()


def test_prepared_job_whose_element_list_changed_fails(runner: JobRunner, holder: HolderProcess, workspace: Workspace,
                                                       tmp_path: Path) -> None:
    import sqlite3

    _query_file(workspace, tmp_path / "q.csv", seed=12)
    job_id = _stopped_after_first_batch(workspace, runner, tmp_path / "q.csv", tmp_path / "r.csv")
    with sqlite3.connect(runner.store.path) as db:  # as if the schema or normaliser had changed
        db.execute("UPDATE jobs SET elements_total = elements_total + 1 WHERE id = ?", (job_id,))
    outcome = runner.run(job_id)
    assert outcome.exit_state == "failed"
    assert "elements" in outcome.job.error and "new job" in outcome.job.error
    assert not (tmp_path / "r.csv").exists()


def test_cardinality_session_sends_pairwise_distinct_blinded_elements(
    workspace: Workspace, holder: HolderProcess, runner: JobRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One blind per cardinality session: equal keys would give equal elements, so each is sent once."""
    from blindmatch.core.messages import BlindedBatch
    from blindmatch.crypto.group import ELEMENT_BYTES
    from blindmatch.requester import holder_client

    truth = _query_file(workspace, tmp_path / "q.csv", seed=13)
    with (tmp_path / "q.csv").open(encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    # Every record three times: the count must not change, nor may equal elements be sent.
    (tmp_path / "dup.csv").write_text(lines[0] + "".join(line * 3 for line in lines[1:]), encoding="utf-8")
    sent: list[bytes] = []
    original = holder_client.client_message_to_pb

    def recording(message: object) -> object:
        if isinstance(message, BlindedBatch):
            sent.extend(message.elements[i : i + ELEMENT_BYTES] for i in range(0, len(message.elements), ELEMENT_BYTES))
        return original(message)  # type: ignore[arg-type]

    monkeypatch.setattr(holder_client, "client_message_to_pb", recording)
    job, _ = runner.submit(tmp_path / "dup.csv", tmp_path / "dup.count", Mode.CARDINALITY)
    outcome = run_approved(workspace, runner, job.id)
    assert outcome.exit_state == "succeeded", outcome.job.error
    assert len(sent) == outcome.job.preparation.elements_total > 0
    assert len(set(sent)) == len(sent), "equal blinded elements were sent in a cardinality session"
    membership, _ = runner.submit(tmp_path / "q.csv", tmp_path / "r.csv", Mode.MEMBERSHIP)
    assert run_approved(workspace, runner, membership.id).exit_state == "succeeded"
    assert outcome.job.matches == _strongest_tier_matches(tmp_path / "r.csv")
    assert compare_results(tmp_path / "r.csv", truth)["false_matches"] == 0


def test_a_stalled_holder_times_out_and_the_job_resumes(
    workspace: Workspace, holder: HolderProcess, runner: JobRunner, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGSTOP the holder mid-match: the batch timeout turns it into holder-unavailable, then it resumes."""
    import dataclasses
    import logging
    import os
    import signal

    config = dataclasses.replace(
        runner.config, holder=dataclasses.replace(runner.config.holder, batch_timeout_seconds=1.0, retry_seconds=60.0)
    )
    impatient = JobRunner(config, runner.store, runner.audit, runner.engine)
    truth = _query_file(workspace, tmp_path / "q.csv", seed=14)
    assert holder.process is not None
    pid = holder.process.pid
    resumes: list[threading.Timer] = []

    def on_progress(progress: object) -> None:
        if getattr(progress, "phase", "") == "match" and not resumes:
            os.kill(pid, signal.SIGSTOP)
            resumes.append(threading.Timer(4.0, os.kill, (pid, signal.SIGCONT)))
            resumes[0].start()

    caplog.set_level(logging.WARNING, logger="blindmatch.requester")
    job, _ = impatient.submit(tmp_path / "q.csv", tmp_path / "r.csv", Mode.MEMBERSHIP)
    try:
        outcome = run_approved(workspace, impatient, job.id, on_progress)
    finally:
        for timer in resumes:
            timer.join()
        os.kill(pid, signal.SIGCONT)
    # The cut session's unanswered elements go in a new request, which the official approves too.
    assert outcome.exit_state == "awaiting_approval", outcome.job.error
    assert 0 < outcome.job.elements_done < outcome.job.preparation.elements_total
    outcome = run_approved(workspace, impatient, job.id)
    assert outcome.exit_state == "succeeded", outcome.job.error
    assert "no answer from the holder for 1 s" in caplog.text
    counts = compare_results(tmp_path / "r.csv", truth)
    assert counts["matches"] == counts["expected_matches"] > 0 and counts["false_matches"] == 0


def test_stop_is_not_blocked_by_a_stalled_holder(holder: HolderProcess, runner: JobRunner, workspace: Workspace,
                                                 tmp_path: Path) -> None:
    """The daemon's SIGTERM drain: a stalled Match call is cancelled after the session-finish
    grace, well before the batch timeout."""
    import os
    import signal
    import time

    stop = threading.Event()
    stopper = JobRunner(runner.config, runner.store, runner.audit, runner.engine, stop)
    assert runner.config.holder.batch_timeout_seconds >= 60
    _query_file(workspace, tmp_path / "q.csv", seed=15)
    assert holder.process is not None
    pid = holder.process.pid
    stopped_at: list[float] = []

    def on_progress(progress: object) -> None:
        if getattr(progress, "phase", "") == "match" and not stopped_at:
            os.kill(pid, signal.SIGSTOP)
            stopped_at.append(time.monotonic())
            threading.Timer(0.5, stop.set).start()

    job, _ = stopper.submit(tmp_path / "q.csv", tmp_path / "r.csv", Mode.MEMBERSHIP)
    try:
        outcome = run_approved(workspace, stopper, job.id, on_progress)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert outcome.exit_state == "stopped" and outcome.job.state == "queued"
    # After the grace an open session gets to finish, and long before the batch timeout.
    assert time.monotonic() - stopped_at[0] < SESSION_FINISH_GRACE_SECONDS + 5 < runner.config.holder.batch_timeout_seconds


def test_second_in_process_match_of_a_running_job_is_one_line_error(workspace: Workspace, runner: JobRunner,
                                                                     tmp_path: Path) -> None:
    import subprocess

    from blindmatch.pilot.processes import blindmatch_command
    from blindmatch.requester.job_owner import owner_token

    _query_file(workspace, tmp_path / "q.csv", seed=16)
    job, _ = runner.submit(tmp_path / "q.csv", tmp_path / "r.csv", Mode.MEMBERSHIP)
    assert runner.store.claim(job.id, owner_token())  # a live runner (this process) has it
    try:
        done = subprocess.run(
            blindmatch_command("requester", "match", str(tmp_path / "q.csv"), "--config", str(workspace.requester_config),
                               "--out", str(tmp_path / "r.csv"), "--no-progress"),
            capture_output=True, text=True, timeout=120,
        )
    finally:
        runner.store.release(job.id, "queued")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "already being run" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_dead_owner_with_a_reused_pid_is_resumable(tmp_path: Path) -> None:
    """After a container restart the dead owner's pid may be live again (here: our own pid)."""
    import os

    from blindmatch.requester.job_owner import owner_token

    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.create_or_resume(tmp_path / "q.csv", tmp_path / "r.csv", "membership", "0" * 64)
    live = owner_token()
    assert store.claim(job.id, live)
    assert store.resumable() == []  # a live owner keeps its job
    assert not store.claim(job.id, owner_token())  # nor can another runner take it
    start = live.split(":")[1]
    assert start, "no process start time on this platform"
    crashed = f"{os.getpid()}:{int(start) - 1}:deadbeef"  # same pid, started earlier: another process
    with store._tx() as db:  # state as a crash leaves it
        db.execute("UPDATE jobs SET state = 'running', owner = ? WHERE id = ?", (crashed, job.id))
    assert [j.id for j in store.resumable()] == [job.id]
    assert store.claim(job.id, owner_token())


def test_duplicate_header_and_overlong_rows(tmp_path: Path) -> None:
    from datetime import date

    from blindmatch.normalize import default_schema
    from blindmatch.requester.inputs import JobInputError, prepare_elements

    person = synthetic.generate_people(1, 2025)[0]
    path = tmp_path / "q.csv"
    path.write_text(f'name,address,order_date,name\n"{person["name"]}","{person["address"]}",2024-01-02,x\n',
                    encoding="utf-8")
    with pytest.raises(JobInputError, match="'name' appears more than once"):
        prepare_elements(path, default_schema(), Mode.MEMBERSHIP, date(2024, 6, 1))
    path.write_text(
        "name,address,order_date\n"
        f'"{person["name"]}","{person["address"]}",2024-01-02\n'
        f'"{person["name"]}","{person["address"]}",2024-01-02,extra\n',
        encoding="utf-8",
    )
    elements, statuses = prepare_elements(path, default_schema(), Mode.MEMBERSHIP, date(2024, 6, 1))
    assert [s for _, s, _ in statuses] == ["ok", "invalid: columns"]
    assert set(elements.rows.tolist()) == {1}  # the overlong row is not sent


def test_zombie_owner_releases_its_jobs(tmp_path: Path) -> None:
    """A runner that exited but was not reaped (its parent never waited) holds no job (issue 17)."""
    import os
    import time

    from blindmatch.requester.job_owner import owner_token

    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.create_or_resume(tmp_path / "q.csv", tmp_path / "r.csv", "membership", "0" * 64)
    pid = os.fork()
    if pid == 0:  # the child claims the job, then dies without releasing it
        try:
            claimed = JobStore(tmp_path / "jobs.sqlite").claim(job.id, owner_token())
        finally:
            os._exit(0 if claimed else 1)
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not become a zombie"
            time.sleep(0.01)
        assert store.get(job.id).state == "running" and store.get(job.id).owner.startswith(f"{pid}:")
        assert [j.id for j in store.resumable()] == [job.id]  # a restarted daemon resumes it
        assert store.claim(job.id, owner_token())  # and an in-process run is not "already being run"
    finally:
        os.waitpid(pid, 0)


def test_a_session_its_runner_died_in_does_not_stay_open(tmp_path: Path) -> None:
    """kill -9 mid-session leaves the session ``open``; the next claim of the job marks it
    ``interrupted`` (issue 17), and a session of a live runner is left alone."""
    from blindmatch.requester.job_owner import owner_token
    from blindmatch.requester.jobs import INTERRUPTED

    store = JobStore(tmp_path / "jobs.sqlite")
    job, _ = store.create_or_resume(tmp_path / "q.csv", tmp_path / "r.csv", "membership", "0" * 64)
    assert store.claim(job.id, owner_token())
    store.open_session(job.id, b"\x01" * 16, 10)
    assert not store.claim(job.id, owner_token())  # its runner lives: nothing changes

    def states() -> list[str]:
        return [row[0] for row in store._db().execute("SELECT state FROM sessions WHERE job_id = ?", (job.id,))]

    assert states() == ["open"]
    with store._tx() as db:  # as kill -9 leaves it: the owner is gone
        db.execute("UPDATE jobs SET owner = ? WHERE id = ?", ("999999999:1:dead", job.id))
    assert store.claim(job.id, owner_token())
    assert states() == [INTERRUPTED]
