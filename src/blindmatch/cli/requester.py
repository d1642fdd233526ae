"""``blindmatch requester``: the requester's daemon and its match command.

``match`` hands the job to the daemon when one answers on the configured socket, and
otherwise runs it in this process against the same job store, so an interrupted job is
resumed by whichever runs next. Exit codes (``vocabulary.ExitCode``): 0 ok, 1 failure,
2 usage, configuration or input, 3 refused by the holder, 4 holder unavailable, 5 the daemon
stopped while the job ran (it stays queued and the daemon resumes it when it starts again).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from tqdm import tqdm

from blindmatch.cli.errors import CliError
from blindmatch.requester.config import (
    ConfigError,
    RequesterConfig,
    load_requester_config,
)
from blindmatch.vocabulary import ExitCode, JobState, Mode, exit_code_for_job

if TYPE_CHECKING:
    from blindmatch.v1 import requester_pb2 as rpb

_EXIT_CODES_HELP = (
    "exit codes: 0 done, 1 failed, 2 usage, configuration or input, 3 refused by the holder, "
    "4 holder unavailable, 5 the requester daemon stopped; the job stays queued and resumes when it restarts"
)
_DAEMON_PROBE_SECONDS = 1.0
DAEMON_SILENCE_SECONDS = 15.0  # three missed heartbeats of requester.service.WATCH_HEARTBEAT_SECONDS
_DAEMON_RETRY_SECONDS = 10.0  # a daemon that answered the probe but is busy or restarting


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("requester", help="the requesting organisation's daemon and match command")
    commands = parser.add_subparsers(dest="requester_command", metavar="SUBCOMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the requester daemon (local job service)",
        description="Serve the local job service on unix:<state_dir>/requester.sock (or the configured "
        "loopback address) and resume unfinished jobs. SIGTERM stops at the next batch boundary.",
    )
    serve.add_argument("--config", required=True, type=Path, help="requester.toml")
    serve.add_argument("--log-format", choices=("json", "text"), default="json",
                       help="stderr log lines: one JSON object each (default) or plain text")
    serve.set_defaults(func=_serve)
    match = commands.add_parser(
        "match",
        help="match QUERIES.csv against the holder",
        description="Check each record's legal basis, match the eligible ones and write RESULTS.csv: every "
        "input column plus matched, tier, confirms (whether that tier confirms or is for review) and status. Cardinality mode prints the match count instead: the "
        "number of distinct match keys (each record's strongest tier) found at the holder, so records with "
        "equal keys count once.",
        epilog=_EXIT_CODES_HELP,
    )
    match.add_argument("queries", type=Path, metavar="QUERIES.csv")
    match.add_argument("--config", required=True, type=Path, help="requester.toml")
    match.add_argument("--out", type=Path, metavar="RESULTS.csv", help="results file (membership mode)")
    match.add_argument("--mode", choices=[m.value for m in Mode], help="default: matching.mode of the config")
    match.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    match.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    match.set_defaults(func=_match)
    linkage = commands.add_parser(
        "linkage-request",
        help="write a linkage request: the eligible rows the issuer gave no token (address not on its record)",
        description="Verify the token file of QUERIES.csv ([eligibility] in requester.toml, or --tokens), then "
        "write REQUEST.csv (mode 0600) with the rows that pass the requester's own legal-basis check but have no "
        "token: queries_row, the schema's name, address and basis fields and the order reference. The issuer's "
        "clerks decide it with 'blindmatch issuer approve'; then 'issuer issue --orders' gives the approved rows "
        "tokens.",
    )
    linkage.add_argument("queries", type=Path, metavar="QUERIES.csv")
    linkage.add_argument("--config", required=True, type=Path, help="requester.toml")
    linkage.add_argument("--out", required=True, type=Path, metavar="REQUEST.csv")
    linkage.add_argument("--tokens", type=Path, metavar="TOKENS", help="default: [eligibility] tokens of the config")
    linkage.add_argument("--case-field", default="case_ref", metavar="COLUMN",
                         help="the order reference column the issuer expects (default: case_ref)")
    linkage.set_defaults(func=_linkage_request)


def _load(path: Path) -> RequesterConfig:

    try:
        return load_requester_config(path)
    except ConfigError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None


def _linkage_request(args: argparse.Namespace) -> int:
    from blindmatch.normalize import resolve_schema
    from blindmatch.requester.linkage_request import LinkageRequestError, prepare_linkage_request

    config = _load(args.config)
    if config.eligibility is None:
        raise LinkageRequestError(f"{args.config}: no [eligibility] table: a linkage request needs the issuer's "
                                  "pinned key and token file")
    tokens = args.tokens or config.eligibility.tokens_for(args.queries)
    request = prepare_linkage_request(args.queries, tokens, config.eligibility.issuer_key,
                                      resolve_schema(config.matching.schema), args.out, case_field=args.case_field)
    print(request.summary(args.out))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from blindmatch.audit import AuditError
    from blindmatch.requester.service import RequesterDaemon
    from blindmatch.transport.jsonlog import configure_logging

    config = _load(args.config)
    configure_logging(args.log_format)
    if _daemon_channel(config) is not None:
        raise CliError(f"a requester daemon already answers on {config.service_target}")
    try:
        daemon = RequesterDaemon(config)
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot start the requester daemon: {exc}") from None
    try:
        daemon.serve_forever()
    except (OSError, AuditError) as exc:  # e.g. a full disk under its audit log: it never served
        raise CliError(f"the requester daemon stopped: {exc}") from None
    return 0


def _daemon_channel(config: RequesterConfig) -> grpc.Channel | None:
    """A channel to the running daemon, or None when none answers."""
    if config.listen == "unix" and not config.socket_path.exists():
        return None
    channel = grpc.insecure_channel(config.service_target)
    try:
        grpc.channel_ready_future(channel).result(timeout=_DAEMON_PROBE_SECONDS)
    except grpc.FutureTimeoutError:
        channel.close()
        return None
    return channel


class _Bar:
    """One tqdm bar per phase (index download in bytes, matching in keys) on stderr."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._phase = ""
        self._bar: tqdm | None = None

    def update(self, phase: str, done: int, total: int) -> None:
        if not self._enabled or phase == "prepare" or total <= 0:
            return
        if phase != self._phase:
            self.close()
            self._phase = phase
            unit, scale = ("B", True) if phase == "download" else ("key", False)
            label = "downloading index" if phase == "download" else "matching"
            self._bar = tqdm(total=total, desc=label, unit=unit, unit_scale=scale, file=sys.stderr, leave=False)
        assert self._bar is not None
        self._bar.total = total
        self._bar.n = done
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _match(args: argparse.Namespace) -> int:

    config = _load(args.config)
    mode = Mode(args.mode) if args.mode else config.matching.mode
    if mode is Mode.MEMBERSHIP and args.out is None:
        raise CliError("membership mode needs --out RESULTS.csv", ExitCode.USAGE)
    if not args.queries.is_file():
        raise CliError(f"{args.queries}: no such file", ExitCode.USAGE)
    queries = args.queries.resolve()
    out = (args.out or args.queries.with_name(args.queries.name + ".count")).resolve()
    from blindmatch.requester.inputs import JobInputError, check_output_path

    try:
        check_output_path(queries, out, mode)  # before the daemon or the holder sees the job
    except JobInputError as exc:
        raise CliError(str(exc), ExitCode.USAGE) from None
    bar = _Bar(enabled=not args.no_progress)
    try:
        channel = _daemon_channel(config)
        if channel is not None:
            with channel:
                summary = _match_via_daemon(channel, queries, out, mode, bar.update)
        else:
            summary = _match_in_process(config, queries, out, mode, bar.update)
    finally:
        bar.close()
    _print_summary(summary, mode, args.json)
    return exit_code_for_job(str(summary["state"]), str(summary["reason"]))


def _match_via_daemon(
    channel: grpc.Channel, queries: Path, out: Path, mode: Mode, progress: Callable[[str, int, int], None]
) -> dict[str, object]:
    from blindmatch.requester.service import MODE_TO_JOB_PB, PB_TO_STATE
    from blindmatch.transport.retry import call_with_retry
    from blindmatch.v1 import requester_pb2 as rpb
    from blindmatch.v1 import requester_pb2_grpc as rpb_grpc

    stub = rpb_grpc.RequesterStub(channel)
    spec = rpb.JobSpec(queries_path=str(queries), out_path=str(out), mode=MODE_TO_JOB_PB[mode])
    try:
        # Submit finds the unfinished job of the same input, so a retried Submit never makes two.
        reply = call_with_retry(lambda: stub.Submit(spec), _DAEMON_RETRY_SECONDS)
    except grpc.RpcError as exc:  # the daemon refuses a job only for its input (paths, columns)
        usage = exc.code() is grpc.StatusCode.INVALID_ARGUMENT
        raise CliError(f"requester daemon: {exc.code().name}: {exc.details()}",
                       ExitCode.USAGE if usage else ExitCode.FAILURE) from None
    status = None
    try:
        with _SilenceWatchdog(stub.WatchJob(rpb.GetJobRequest(job_id=reply.job_id))) as watch:
            for status in watch:
                progress("match", status.elements_done, status.elements_total)
    except grpc.RpcError as exc:
        if exc.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
            raise CliError(f"requester daemon: {exc.code().name}: {exc.details()}") from None
        # The daemon went away mid-watch; the job is in its store and resumes on its next start.
        return _queued_summary(reply.job_id, status, out)
    assert status is not None
    state = PB_TO_STATE[status.state]
    if state in (JobState.QUEUED, JobState.RUNNING):  # the stream ended before the job did: the daemon is stopping
        return _queued_summary(reply.job_id, status, out)
    return {
        "job_id": status.job_id,
        "state": state,
        "records": status.records,
        "ineligible": status.ineligible,
        "invalid": status.invalid,
        "matches": status.matches,
        "out": status.out_path,
        "error": status.error,
        "reason": status.reason,
        "status_code": status.status_code,
        "via": "daemon",
    }


class _SilenceWatchdog:
    """Cancels a watch on which the daemon sent nothing for ``DAEMON_SILENCE_SECONDS``.

    The daemon repeats the job's status at least every ``WATCH_HEARTBEAT_SECONDS``
    (requester.service), so silence means it stopped answering (stopped, hung, or dead with
    its socket still held open by a child process): the watch ends CANCELLED, which reports
    the job queued, instead of waiting forever.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._last = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="daemon-watchdog", daemon=True)

    def _watch(self) -> None:
        while not self._done.wait(0.5):
            if time.monotonic() - self._last > DAEMON_SILENCE_SECONDS:
                self._call.cancel()
                return

    def __enter__(self) -> _SilenceWatchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def __iter__(self) -> Iterator[Any]:
        for item in self._call:
            self._last = time.monotonic()
            yield item


def _queued_summary(job_id: str, status: rpb.JobStatus | None, out: Path) -> dict[str, object]:
    """The summary of a job the stopping daemon gave back (counts as last seen, if any)."""
    from blindmatch.v1 import requester_pb2 as rpb

    seen = status or rpb.JobStatus()
    return {
        "job_id": job_id,
        "state": JobState.QUEUED,
        "records": seen.records,
        "ineligible": seen.ineligible,
        "invalid": seen.invalid,
        "matches": seen.matches,
        "out": str(out),
        "error": "the requester daemon stopped (or stopped answering); the job is queued and resumes when "
        "the daemon restarts (run the same command again to watch it)",
        "reason": "",
        "status_code": "",
        "via": "daemon",
    }


def _match_in_process(
    config: RequesterConfig, queries: Path, out: Path, mode: Mode, progress: Callable[[str, int, int], None]
) -> dict[str, object]:
    from blindmatch.audit import AuditLog
    from blindmatch.crypto.batch import BatchEngine
    from blindmatch.requester.inputs import JobInputError
    from blindmatch.requester.jobs import JobStore
    from blindmatch.requester.runner import JobBusy, JobRunner
    from blindmatch.requester.witnessing import submit_checkpoint

    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = BatchEngine()
    try:
        with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
            runner = JobRunner(config, JobStore(config.store_path), audit, engine)
            job, _ = runner.submit(queries, out, mode)
            outcome = runner.run(job.id, lambda p: progress(p.phase, p.done, p.total))
            # No daemon submits what this process wrote: it does so before it exits (bounded).
            witnessed = submit_checkpoint(audit, config.witnesses) if config.witnesses else None
    except (JobInputError, JobBusy) as exc:
        raise CliError(str(exc), exc.exit_code) from None
    except OSError as exc:
        raise CliError(str(exc)) from None
    finally:
        engine.close()
    final = outcome.job
    return {
        **({"witnesses": witnessed.as_json()} if witnessed is not None else {}),
        "job_id": final.id,
        "state": final.state,
        "records": final.preparation.records,
        "ineligible": final.preparation.ineligible,
        "invalid": final.preparation.invalid,
        "matches": final.matches,
        "out": str(final.out_path),
        "error": final.error,
        "reason": final.reason,
        "status_code": final.status_code,
        "via": "in-process",
    }


def _confirmation_counts(out: Path) -> dict[str, int]:
    """Matched rows of RESULTS.csv by whether their tier confirms or is for review."""
    counts = {"confirmed": 0, "for_review": 0}
    with out.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row.get("matched") == "true":
                counts["confirmed" if row.get("confirms") == "true" else "for_review"] += 1
    return counts


def _print_summary(summary: dict[str, object], mode: Mode, as_json: bool) -> None:
    state = summary["state"]
    witnesses = summary.get("witnesses")
    if isinstance(witnesses, dict) and not as_json:
        _print_witnesses(witnesses)
    if state == "succeeded" and mode is not Mode.CARDINALITY and Path(str(summary["out"])).is_file():
        summary.update(_confirmation_counts(Path(str(summary["out"]))))  # issue 16: confirmations vs review
    if as_json:
        if mode is Mode.CARDINALITY:
            summary.pop("out")
        print(json.dumps({"mode": mode.value, **summary}, sort_keys=True))
        return
    if state != "succeeded":
        detail = f" ({summary['reason']}, {summary['status_code']})" if summary["reason"] else ""
        print(f"blindmatch: job {summary['job_id']} {state}{detail}: {summary['error']}", file=sys.stderr)
        return
    held = f"{summary['ineligible']} held back as ineligible, {summary['invalid']} invalid"
    if mode is Mode.CARDINALITY:
        print(summary["matches"])
        print(f"{summary['records']} records, {held}", file=sys.stderr)
    else:
        print(f"{summary['records']} records: {summary['matches']} matched ({summary.get('confirmed', 0)} confirmed, "
              f"{summary.get('for_review', 0)} for review), {held}; results in {summary['out']}")


def _print_witnesses(witnesses: dict[str, Any]) -> None:
    """The one-shot run's witness submission (``requester.witnessing``), on stderr."""
    for name in witnesses["cosigned_by"]:
        print(f"audit checkpoint of size {witnesses['checkpoint_size']} cosigned by {name}", file=sys.stderr)
    for pending in witnesses["pending"]:
        print(f"warning: {pending['error']}; {witnesses['later']}", file=sys.stderr)
