"""The requester daemon: a local job service in front of :class:`JobRunner`.

It listens only on a unix socket (mode 0600) in the state directory (mode 0700): the
service accepts file paths and starts jobs, so it must only be reachable by the user the
daemon runs as (TCP, which has no client authentication here, is refused by the config). Jobs run in a bounded thread pool; on start the daemon resumes every job a
previous run left queued or running, and on SIGTERM it stops at the next batch
boundary and leaves unfinished jobs queued for the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from blindmatch import __version__
from blindmatch.audit import AuditLog
from blindmatch.audit.keeper import AuditKeeper
from blindmatch.crypto.batch import BatchEngine
from blindmatch.requester.config import RequesterConfig
from blindmatch.requester.inputs import JobInputError
from blindmatch.requester.jobs import Job, JobStore, JobStoreError
from blindmatch.requester.runner import JobBusy, JobRunner, Progress
from blindmatch.transport.guard import CallGuard, transport_ceiling
from blindmatch.transport.serving import DaemonServer, serve_until_stopped
from blindmatch.v1 import requester_pb2 as rpb
from blindmatch.v1 import requester_pb2_grpc as rpb_grpc
from blindmatch.vocabulary import JobState, Mode
from blindmatch.witness.client import WitnessClient

log = logging.getLogger("blindmatch.requester")

SERVICE_NAME = "blindmatch.v1.Requester"
STATE_TO_PB = {
    JobState.QUEUED: rpb.JOB_STATE_QUEUED,
    JobState.RUNNING: rpb.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: rpb.JOB_STATE_SUCCEEDED,
    JobState.FAILED: rpb.JOB_STATE_FAILED,
    JobState.REFUSED: rpb.JOB_STATE_REFUSED,
    JobState.HOLDER_UNAVAILABLE: rpb.JOB_STATE_HOLDER_UNAVAILABLE,
    JobState.AWAITING_APPROVAL: rpb.JOB_STATE_AWAITING_APPROVAL,
    JobState.REJECTED: rpb.JOB_STATE_REJECTED,
}
PB_TO_STATE = {v: k for k, v in STATE_TO_PB.items()}
MODE_TO_JOB_PB = {Mode.MEMBERSHIP: rpb.JOB_MODE_MEMBERSHIP, Mode.CARDINALITY: rpb.JOB_MODE_CARDINALITY}
_WATCH_POLL_SECONDS = 1.0
_APPROVAL_POLL_SECONDS = 0.5
LOCAL_MAX_MESSAGE_BYTES = 65_536  # a JobSpec is two paths and a mode


def job_status(job: Job, progress: Progress | None = None) -> rpb.JobStatus:
    """The wire form of a job; while downloading, ``elements_done`` stays the stored count."""
    return rpb.JobStatus(
        job_id=job.id,
        state=STATE_TO_PB[JobState(job.state)],
        mode=MODE_TO_JOB_PB[Mode(job.mode)],
        records=job.preparation.records,
        ineligible=job.preparation.ineligible,
        invalid=job.preparation.invalid,
        elements_total=job.preparation.elements_total,
        elements_done=progress.done if progress and progress.phase == "match" else job.elements_done,
        matches=job.matches,
        error=job.error,
        reason=job.reason,
        status_code=job.status_code,
        out_path=str(job.out_path),
    )


class RequesterServicer(rpb_grpc.RequesterServicer):
    """Submit/GetJob/WatchJob over the shared runner; one worker thread per running job."""

    def __init__(self, runner: JobRunner, max_parallel_jobs: int) -> None:
        self._runner = runner
        self._pool = ThreadPoolExecutor(max_parallel_jobs, thread_name_prefix="job")
        self._changed = threading.Condition()
        self._scheduled: set[str] = set()
        self._progress: dict[str, Progress] = {}

    def schedule(self, job_id: str) -> None:
        with self._changed:
            if job_id in self._scheduled:
                return
            self._scheduled.add(job_id)
        self._pool.submit(self._run, job_id)

    def shutdown(self) -> None:
        """Wait for running jobs to finish their open session (the runner's stop event is set).

        Jobs that never started stay queued; watchers are then told the final state.
        """
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._changed:
            self._scheduled.clear()
            self._changed.notify_all()

    def _run(self, job_id: str) -> None:
        try:
            if not self._runner.stop.is_set():
                outcome = self._runner.run(job_id, self._on_progress)
                log.info("job %s: %s", job_id, outcome.exit_state)
        except JobBusy as exc:
            log.warning("%s", exc)
        except Exception:
            log.exception("job %s: internal error", job_id)
        finally:
            with self._changed:
                self._scheduled.discard(job_id)
                self._progress.pop(job_id, None)
                self._changed.notify_all()

    def _on_progress(self, progress: Progress) -> None:
        with self._changed:
            self._progress[progress.job_id] = progress
            self._changed.notify_all()

    def Submit(self, request: rpb.JobSpec, context: grpc.ServicerContext) -> rpb.SubmitReply:
        queries, out = Path(request.queries_path), Path(request.out_path)
        if not queries.is_absolute() or not out.is_absolute():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "queries_path and out_path must be absolute")
        if request.mode == rpb.JOB_MODE_UNSPECIFIED:
            mode = self._runner.config.matching.mode
        else:
            mode = {v: k for k, v in MODE_TO_JOB_PB.items()}[request.mode]
        try:
            job, resumed = self._runner.submit(queries, out, mode)
        except JobInputError as exc:  # names paths and columns, never record values
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except OSError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"cannot read {queries}: {exc.__class__.__name__}")
        except JobStoreError as exc:  # e.g. a full state disk: the job cannot be recorded (issue 17)
            context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        self.schedule(job.id)
        return rpb.SubmitReply(job_id=job.id, resumed=resumed)

    def _job(self, job_id: str, context: grpc.ServicerContext) -> Job:
        try:
            return self._runner.store.get(job_id)
        except KeyError:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no job {job_id!r}")
            raise

    def GetJob(self, request: rpb.GetJobRequest, context: grpc.ServicerContext) -> rpb.JobStatus:
        return job_status(self._job(request.job_id, context), self._progress.get(request.job_id))

    def WatchJob(self, request: rpb.GetJobRequest, context: grpc.ServicerContext) -> Iterator[rpb.JobStatus]:
        """Stream the job's status until it ends, or until this daemon stops with the job given
        back (queued), so the watcher learns that it resumes on the next start."""
        last: rpb.JobStatus | None = None
        sent_at = 0.0
        while context.is_active():
            with self._changed:
                # Checked before reading the job, so the state it was given back in is sent.
                stopped = self._runner.stop.is_set() and request.job_id not in self._scheduled
            status = job_status(self._job(request.job_id, context), self._progress.get(request.job_id))
            # Unchanged status is repeated as a heartbeat: the watcher's sign that we still answer.
            if status != last or time.monotonic() - sent_at >= WATCH_HEARTBEAT_SECONDS:
                yield status
                last, sent_at = status, time.monotonic()
            if stopped or status.state not in (rpb.JOB_STATE_QUEUED, rpb.JOB_STATE_RUNNING):
                return
            with self._changed:
                self._changed.wait(_WATCH_POLL_SECONDS)


WATCH_HEARTBEAT_SECONDS = 5.0  # cli.requester gives up on a watch silent for three of these


class RequesterDaemon:
    """The running daemon: gRPC server, job store, audit log and the SIGTERM drain."""

    def __init__(self, config: RequesterConfig) -> None:
        self.config = config
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = JobStore(config.store_path)
        self.audit = AuditLog.open(config.audit_dir, config.audit_origin)
        submit = WitnessClient(config.witnesses).submit if config.witnesses else None
        self.keeper = AuditKeeper(self.audit, config.audit_log, submit)
        self.engine = BatchEngine()
        self.stop = threading.Event()
        self.runner = JobRunner(config, self.store, self.audit, self.engine, self.stop)
        self.servicer = RequesterServicer(self.runner, config.max_parallel_jobs)
        self.metrics_port = 0  # the bound metrics port once started (0: none served)
        server = grpc.server(
            ThreadPoolExecutor(config.max_parallel_jobs + 8, thread_name_prefix="rpc"),
            # Local, unencrypted (unix socket or loopback): only the decoding and size checks apply.
            interceptors=[CallGuard(LOCAL_MAX_MESSAGE_BYTES, require_tls13=False)],
            options=[("grpc.max_receive_message_length", transport_ceiling(LOCAL_MAX_MESSAGE_BYTES))],
        )
        rpb_grpc.add_RequesterServicer_to_server(self.servicer, server)
        self._serving = DaemonServer(server, SERVICE_NAME)
        if config.socket_path.exists():
            config.socket_path.unlink()  # the caller checked no live daemon answers on it
        previous = os.umask(0o177)  # the socket is created owner-only, never briefly wider
        try:
            self._serving.bind_local(config.service_target)
        finally:
            os.umask(previous)
        if not config.socket_path.exists():
            raise OSError(f"cannot listen on {config.service_target}")
        config.socket_path.chmod(0o600)

    def start(self) -> None:
        self.audit.append("daemon_started", role="requester", version=__version__)  # before it serves
        if self.config.metrics_listen:  # bound before health says SERVING, so a ready daemon has its metrics port
            self.metrics_port = self.runner.metrics.serve(self.config.metrics_listen)
        self._serving.start()
        self.keeper.start()
        for job in self.store.resumable():
            log.info("resuming job %s", job.id)
            self.servicer.schedule(job.id)
        threading.Thread(target=self._run_released, name="approvals", daemon=True).start()

    def _run_released(self) -> None:
        """Schedule jobs that officials released (``official approve`` queues them in the store)."""
        while not self.stop.wait(_APPROVAL_POLL_SECONDS):
            for job in self.store.resumable():
                if job.state == JobState.QUEUED:
                    self.servicer.schedule(job.id)

    def stop_gracefully(self) -> None:
        """Stop taking calls, let running jobs reach a batch boundary, close the audit log."""
        self._serving.begin_shutdown()
        self.stop.set()
        self.servicer.shutdown()
        self._serving.stop(grace=2)
        self.runner.metrics.close()
        self.audit.append("daemon_stopped", role="requester", version=__version__)
        self.keeper.stop()  # shutdown checkpoint and its last witness submission
        self.audit.close()
        self.engine.close()
        self.config.socket_path.unlink(missing_ok=True)

    def serve(self, announce: Callable[[str], None]) -> int:
        """Run until SIGTERM or SIGINT (``transport.serving``'s loop), then drain; exit 0.

        A start that fails half way (a full disk under the audit log) is wound down too."""

        def start() -> str:
            try:
                self.start()
            except BaseException:
                self.stop_gracefully()
                raise
            return f"requester daemon listening on {self.config.service_target}"

        return serve_until_stopped(start, self.stop_gracefully, announce)
