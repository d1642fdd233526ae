"""Crash safety: kill -9 of the holder mid-download or mid-match, and of the requester daemon.

Each case must end with RESULTS.csv byte-identical to an uninterrupted run, and must
show that the crash really interrupted the work (otherwise the test proves nothing).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from helpers.job_runner import job_runner

from blindmatch.pilot.demo import compare_results
from blindmatch.pilot.processes import HolderProcess, blindmatch_command, build_index
from blindmatch.pilot.workspace import Workspace, create_workspace
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import Progress
from blindmatch.v1 import requester_pb2 as rpb
from blindmatch.v1 import requester_pb2_grpc as rpb_grpc
from blindmatch.vocabulary import JobState, Mode
from tests.helpers.holder_process import running_holder
from tests.helpers.officials import approve, run_approved

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    # 6,000 people give an index of ~100 kB: well over gRPC's flow-control window, so a
    # kill after the first 1 kB chunk cannot be hidden by buffered data.
    ws = create_workspace(
        tmp_path_factory.mktemp("resume"), holder_records=6_000, queries=300,
        holder_limits={"index_chunk_bytes": 1024}, matching={"batch_size": 8, "window": 1},
    )
    build_index(ws)
    return ws


@pytest.fixture()
def holder(workspace: Workspace) -> Iterator[HolderProcess]:
    with running_holder(workspace) as process:
        yield process


def _fresh_state(workspace: Workspace) -> None:
    """Each case starts with an empty job store and index cache, and so with a new audit
    log (a store that forgot the log's sessions is refused)."""
    for name in ("state", "audit"):
        directory = workspace.requester_dir / name
        if directory.exists():
            subprocess.run(["rm", "-rf", str(directory)], check=True)


def _run_in_process(workspace: Workspace, out: Path, on_progress: object = None) -> str:
    """Run a job to its end; the official approves it, and again the rest of a session a kill cut."""
    with job_runner(workspace.requester_config) as runner:
        job, _ = runner.submit(workspace.queries, out, Mode.MEMBERSHIP)
        return run_approved(workspace, runner, job.id, on_progress, rounds=2).exit_state  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def baseline(workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """RESULTS.csv of an uninterrupted run, checked against the truth."""
    with running_holder(workspace, "logs-baseline"):
        _fresh_state(workspace)
        out = tmp_path_factory.mktemp("baseline") / "results.csv"
        assert _run_in_process(workspace, out) == "succeeded"
    counts = compare_results(out, json.loads(workspace.truth.read_text()))
    assert counts["expected_matches"] > 0
    assert counts["false_matches"] == counts["missed_matches"] == 0
    return out.read_bytes()


def _kill_then_restart(holder: HolderProcess, delay: float) -> threading.Thread:
    holder.kill()
    restart = threading.Thread(target=lambda: (time.sleep(delay), holder.start()))
    restart.start()
    return restart


@pytest.mark.parametrize("phase", ["download", "match"])
def test_holder_killed_mid_phase_job_resumes(
    phase: str, workspace: Workspace, holder: HolderProcess, baseline: bytes, tmp_path: Path
) -> None:
    _fresh_state(workspace)
    events: list[tuple[int, Progress]] = []
    restarts: list[threading.Thread] = []

    def on_progress(progress: Progress) -> None:
        events.append((holder.starts, progress))
        if progress.phase == phase and not restarts:
            restarts.append(_kill_then_restart(holder, delay=1.0))

    out = tmp_path / "results.csv"
    assert _run_in_process(workspace, out, on_progress) == "succeeded"
    restarts[0].join()
    first = next(p for _, p in events if p.phase == phase)
    assert first.done < first.total, "the kill came after the phase had finished"
    # Work of this phase continued against the restarted holder, from where it stopped.
    resumed = [p for starts, p in events if starts == 2 and p.phase == phase]
    assert resumed and resumed[0].done > first.done
    assert out.read_bytes() == baseline


def test_requester_daemon_killed_job_resumes_from_store(
    workspace: Workspace, holder: HolderProcess, baseline: bytes, tmp_path: Path
) -> None:
    _fresh_state(workspace)
    config = load_requester_config(workspace.requester_config)
    out = tmp_path / "results.csv"

    def start_daemon(n: int) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"daemon-{n}.stderr").open("wb")
        process = subprocess.Popen(blindmatch_command("requester", "serve", "--config", str(workspace.requester_config)),
                                   stdout=subprocess.DEVNULL, stderr=log)
        deadline = time.monotonic() + 30
        while not config.socket_path.exists():
            assert process.poll() is None and time.monotonic() < deadline, "requester daemon did not start"
            time.sleep(0.05)
        return process

    daemon = start_daemon(1)
    assert holder.process is not None
    holder_process = holder.process
    # The job must be killed mid-match however this process is scheduled (RPCs into the
    # busy daemon and sleeps took arbitrarily long under load, so the job could finish
    # first). So the holder is frozen and let run in short slices; the job store is read
    # only while it is frozen, when the daemon (window = 1) can commit at most one more batch.
    holder_process.send_signal(signal.SIGSTOP)
    try:
        with grpc.insecure_channel(config.service_target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = rpb_grpc.RequesterStub(channel)
            job_id = stub.Submit(rpb.JobSpec(queries_path=str(workspace.queries), out_path=str(out))).job_id
        store = JobStore(config.store_path)
        deadline = time.monotonic() + 120
        approved = False
        while store.get(job_id).elements_done == 0:
            assert daemon.poll() is None and time.monotonic() < deadline, "the job made no progress"
            if not approved and store.get(job_id).state == JobState.AWAITING_APPROVAL:
                approve(workspace, job_id)  # the daemon picks the released job up itself
                approved = True
            holder_process.send_signal(signal.SIGCONT)
            time.sleep(0.005)
            holder_process.send_signal(signal.SIGSTOP)
        daemon.kill()
        daemon.wait()
    finally:
        holder_process.send_signal(signal.SIGCONT)
    job = store.get(job_id)
    assert 0 < job.elements_done < job.preparation.elements_total, "the daemon finished before it was killed"

    config.socket_path.unlink()  # left behind by the kill
    daemon = start_daemon(2)  # resumes the job on start, without a new Submit
    try:
        with grpc.insecure_channel(config.service_target) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            stub = rpb_grpc.RequesterStub(channel)
            final = list(stub.WatchJob(rpb.GetJobRequest(job_id=job_id)))[-1]
            if final.state == rpb.JOB_STATE_AWAITING_APPROVAL:  # the rest of the session the kill cut
                approve(workspace, job_id)
                final = list(stub.WatchJob(rpb.GetJobRequest(job_id=job_id)))[-1]
    finally:
        daemon.terminate()
        daemon.wait(30)
    assert final.state == rpb.JOB_STATE_SUCCEEDED, final.error
    assert out.read_bytes() == baseline


def test_asked_to_stop_mid_session_the_requester_finishes_it(
    workspace: Workspace, holder: HolderProcess, baseline: bytes, tmp_path: Path
) -> None:
    """A stop (SIGTERM of the daemon sets this event) mid-session finishes the session rather
    than abandoning it (issue 17): nothing the holder reserved is wasted, no session stays open."""
    _fresh_state(workspace)
    config = load_requester_config(workspace.requester_config)
    out = tmp_path / "results.csv"
    with job_runner(config) as runner:
        job, _ = runner.submit(workspace.queries, out, Mode.MEMBERSHIP)
        stopped_at: list[int] = []

        def on_progress(progress: Progress) -> None:
            if progress.phase == "match" and not stopped_at:
                stopped_at.append(progress.done)
                runner.stop.set()

        outcome = run_approved(workspace, runner, job.id, on_progress)
    assert stopped_at and stopped_at[0] < outcome.job.preparation.elements_total, "the stop came after the session"
    assert outcome.exit_state == "succeeded"  # the one session (the whole job) was finished
    assert out.read_bytes() == baseline
    with JobStore(config.store_path)._tx() as db:
        states = {row[0] for row in db.execute("SELECT state FROM sessions WHERE job_id = ?", (job.id,))}
    assert states == {"closed"}


def test_a_routine_holder_restart_mid_job_leaves_logs_that_reconcile(tmp_path: Path) -> None:
    """SIGTERM of the holder in the middle of a job of several sessions, restarted a second
    later (issue 17): the job succeeds, and ``audit reconcile`` passes, because a session
    the holder never accepted is not logged as opened by the requester."""
    from blindmatch.audit import reconcile

    ws = create_workspace(tmp_path / "ws", holder_records=400, queries=80,
                          matching={"batch_size": 8, "window": 1, "session_max_records": 40})
    build_index(ws)
    holder = HolderProcess(ws.holder_config, ws.root / "logs")
    holder.start()
    restarts: list[threading.Thread] = []

    def restart() -> None:
        holder.terminate()
        time.sleep(1.0)
        holder.start()

    def on_progress(progress: Progress) -> None:
        if progress.phase == "match" and not restarts:
            restarts.append(threading.Thread(target=restart))
            restarts[0].start()

    try:
        assert _run_in_process(ws, tmp_path / "results.csv", on_progress) == "succeeded"
        restarts[0].join()
    finally:
        holder.terminate()
    assert holder.starts == 2
    result = reconcile(ws.holder_dir, ws.requester_dir)
    assert result.ok, result.mismatches
    assert result.sessions >= 2
