"""Load test: 8 requesters run sessions against one holder while hostile peers try to starve it.

    python benchmarks/load_test.py [--requesters 8] [--queries 4000] [--session-records 25]
                                   [--idle-streams 20] [--max-seconds 300] [--out benchmarks/results/load.json]

Everything runs on loopback. The holder is a ``blindmatch holder serve`` subprocess of a
pilot workspace (pilot.workspace) with a second organisation allowed; in this process:

* ``--requesters`` threads each run one job (their share of the queries) through the
  requester's ``JobRunner``, split into sessions of ``--session-records`` records;
* an idle peer (the second organisation) keeps ``--idle-streams`` Match streams open
  that never send a Hello, reopening each one the holder ends (``busy`` or ``idle_timeout``);
* a flooder (also the second organisation) sends undecodable GetInfo and Match calls,
  at most ``--max-flood`` of them;
* a monitor calls the health service's Check every 0.2 s with a 1 s deadline.

It reports sessions completed, each job's results against the workspace's answer key,
the holder's budget before and after against the records sent, session latency p50/p99,
the hostile calls' outcomes, and the health check's worst latency and failures.
Bounded in count (queries, flood calls) and time (``--max-seconds``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import threading
import time
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import grpc
import tomli_w
from grpc_health.v1 import health_pb2, health_pb2_grpc

from blindmatch.audit import AuditLog
from blindmatch.crypto.batch import BatchEngine
from blindmatch.pilot.demo import compare_results
from blindmatch.pilot.processes import HolderProcess, build_index
from blindmatch.pilot.workspace import OTHER_ORG, Workspace, create_workspace, free_port
from blindmatch.requester.config import load_requester_config
from blindmatch.requester.jobs import JobStore
from blindmatch.requester.runner import JobRunner
from blindmatch.transport.pki import init_pki
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc

GARBAGE = b"\xff\xff\xff\xff not a protobuf"


class TimedRunner(JobRunner):
    """The requester's runner, timing each session it runs (a hook, not a patch)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_seconds: list[float] = []
        self._lock = threading.Lock()

    def _session(self, *args: Any, **kwargs: Any) -> None:
        started = time.monotonic()
        super()._session(*args, **kwargs)
        with self._lock:
            self.session_seconds.append(time.monotonic() - started)


def _prepare(root: Path, args: argparse.Namespace) -> tuple[Workspace, int, Path]:
    """The workspace, with the second organisation allowed and certified, and metrics on."""
    ws = create_workspace(root, holder_records=args.holder_records, queries=args.queries,
                          holder_limits={"idle_timeout_seconds": 5.0, "hello_timeout_seconds": 5.0},
                          matching={"session_max_records": args.session_records, "batch_size": 64})
    other = init_pki(ws.root / "ca", [OTHER_ORG], ["localhost"])[0]
    config = tomllib.loads(ws.holder_config.read_text())
    config["holder"]["tls"]["allowed_organisations"].append(OTHER_ORG)
    metrics_port = free_port()
    config["holder"]["metrics"] = {"listen": f"127.0.0.1:{metrics_port}"}
    ws.holder_config.write_text(tomli_w.dumps(config))
    build_index(ws)
    return ws, metrics_port, other.directory


def _split(ws: Workspace, parts: int, root: Path) -> list[tuple[Path, list[bool]]]:
    truth: list[bool] = json.loads(ws.truth.read_text())
    with ws.queries.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = list(reader.fieldnames or []), list(reader)
    shares = []
    for i in range(parts):
        path = root / f"queries-{i}.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, columns)
            writer.writeheader()
            writer.writerows(rows[i::parts])
        shares.append((path, truth[i::parts]))
    return shares


def _channel(ws: Workspace, org_dir: Path) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials((ws.root / "ca" / "ca.crt").read_bytes(),
                                               (org_dir / "client.key").read_bytes(),
                                               (org_dir / "client.crt").read_bytes())
    return grpc.secure_channel(f"127.0.0.1:{ws.port}", credentials,
                               options=[("grpc.ssl_target_name_override", "localhost")])


def _idle_peer(ws: Workspace, org_dir: Path, streams: int, stop: threading.Event, seen: Counter[str]) -> None:
    """Keeps ``streams`` silent Match calls open, reopening each as the holder ends it."""
    never: threading.Event = threading.Event()

    def silent() -> Any:
        never.wait()
        yield from ()

    def one() -> None:
        with _channel(ws, org_dir) as ch:
            stub = pb_grpc.HolderStub(ch)
            while not stop.is_set():
                call = stub.Match(silent())
                try:
                    list(call)
                except grpc.RpcError as exc:
                    seen[f"{exc.code().name}/{reason_from_rpc_error(exc) or '-'}"] += 1
                if stop.wait(0.1):
                    call.cancel()

    threads = [threading.Thread(target=one, daemon=True) for _ in range(streams)]
    for t in threads:
        t.start()
    stop.wait()
    never.set()


def _flooder(ws: Workspace, org_dir: Path, limit: int, stop: threading.Event, seen: Counter[str]) -> None:
    with _channel(ws, org_dir) as ch:
        unary = ch.unary_unary("/blindmatch.v1.Holder/GetInfo")
        stream = ch.stream_stream("/blindmatch.v1.Holder/Match")
        for n in range(limit):
            if stop.is_set():
                return
            try:
                if n % 2:
                    unary(GARBAGE, timeout=5)
                else:
                    list(stream(iter([GARBAGE]), timeout=5))
                seen["OK"] += 1
            except grpc.RpcError as exc:
                seen[f"{exc.code().name}/{reason_from_rpc_error(exc) or '-'}"] += 1


def _monitor(ws: Workspace, org_dir: Path, stop: threading.Event, latencies: list[float], failures: list[str]) -> None:
    with _channel(ws, org_dir) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while not stop.wait(0.2):
            started = time.monotonic()
            try:
                status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0).status
                if status != health_pb2.HealthCheckResponse.SERVING:
                    failures.append(f"status {status}")
            except grpc.RpcError as exc:
                failures.append(exc.code().name)
            latencies.append(time.monotonic() - started)


def _budget(ws: Workspace, official: str) -> int:
    with _channel(ws, ws.requester_dir / "pki") as ch:
        info = pb_grpc.HolderStub(ch).GetInfo(pb.GetInfoRequest(official=official), timeout=10)
    return int(info.budget.organisation_day_remaining)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def _run_jobs(ws: Workspace, shares: list[tuple[Path, list[bool]]], root: Path) -> tuple[list[dict[str, Any]], TimedRunner]:
    config = load_requester_config(ws.requester_config)
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = BatchEngine()
    outcomes: list[dict[str, Any]] = [{} for _ in shares]
    with AuditLog.open(config.audit_dir, config.audit_origin) as audit:
        runner = TimedRunner(config, JobStore(config.store_path), audit, engine)

        def one(i: int) -> None:
            queries, truth = shares[i]
            out = root / f"results-{i}.csv"
            job, _ = runner.submit(queries, out, config.matching.mode)
            outcome = runner.run(job.id)
            counts = compare_results(out, truth) if outcome.exit_state == "succeeded" else {}
            outcomes[i] = {"state": outcome.exit_state, "elements": outcome.job.elements_total,
                           "error": outcome.job.error, **counts}

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(shares))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    engine.close()
    return outcomes, runner


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    ws, _, other_dir = _prepare(root, args)
    shares = _split(ws, args.requesters, root)
    holder = HolderProcess(ws.holder_config, root / "holder-logs")
    holder.start()
    stop = threading.Event()
    idle_seen: Counter[str] = Counter()
    flood_seen: Counter[str] = Counter()
    health_latency: list[float] = []
    health_failures: list[str] = []
    official = load_requester_config(ws.requester_config).official.name
    try:
        budget_before = _budget(ws, official)
        hostile = [
            threading.Thread(target=_idle_peer, args=(ws, other_dir, args.idle_streams, stop, idle_seen), daemon=True),
            threading.Thread(target=_flooder, args=(ws, other_dir, args.max_flood, stop, flood_seen), daemon=True),
            threading.Thread(target=_monitor, args=(ws, other_dir, stop, health_latency, health_failures), daemon=True),
        ]
        for t in hostile:
            t.start()
        time.sleep(1.0)  # the idle streams are in place before the requesters start
        started = time.monotonic()
        timer = threading.Timer(args.max_seconds, stop.set)
        timer.start()
        outcomes, runner = _run_jobs(ws, shares, root)
        elapsed = time.monotonic() - started
        timer.cancel()
        stop.set()
        for t in hostile:
            t.join(timeout=15)
        budget_after = _budget(ws, official)
    finally:
        stop.set()
        holder.terminate()
    sent = sum(o.get("elements", 0) for o in outcomes)
    return {
        "requesters": args.requesters, "queries": args.queries, "holder_records": args.holder_records,
        "session_max_records": args.session_records, "idle_streams": args.idle_streams,
        "wall_seconds": round(elapsed, 2),
        "sessions_completed": len(runner.session_seconds),
        "jobs": outcomes,
        "results_exact": all(o.get("state") == "succeeded" and o["false_matches"] == 0 and o["missed_matches"] == 0
                             and o["ineligible_answered"] == 0 for o in outcomes),
        "budget": {"day_before": budget_before, "day_after": budget_after, "elements_sent": sent,
                   "exact": budget_before - budget_after == sent},
        "session_seconds": {"p50": round(statistics.median(runner.session_seconds), 3) if runner.session_seconds else 0,
                            "p99": round(_percentile(runner.session_seconds, 0.99), 3)},
        "idle_peer_calls": dict(idle_seen), "flood_calls": dict(flood_seen),
        "health": {"checks": len(health_latency), "failures": len(health_failures),
                   "max_seconds": round(max(health_latency, default=0.0), 3),
                   "all_within_1s": not health_failures and max(health_latency, default=0.0) < 1.0},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requesters", type=int, default=8)
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--holder-records", type=int, default=5000)
    parser.add_argument("--session-records", type=int, default=25)
    parser.add_argument("--idle-streams", type=int, default=20)
    parser.add_argument("--max-flood", type=int, default=2000)
    parser.add_argument("--max-seconds", type=float, default=300.0)
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (default: a temporary directory)")
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args()
    if args.workdir:
        report = run(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="blindmatch-load-") as tmp:
            report = run(args, Path(tmp))
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = report["results_exact"] and report["budget"]["exact"] and report["health"]["all_within_1s"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
