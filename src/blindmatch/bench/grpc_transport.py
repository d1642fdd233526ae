"""``blindmatch bench --transport grpc``: the same session over the real daemons on loopback.

Setup (untimed): a throw-away two-organisation workspace (``blindmatch.pilot.workspace.create_workspace``:
PKI with mutual TLS, policy, officials, configs) whose policy budget is raised to the
benchmark's size. Then:

* a builder process evaluates the benchmark's holder keys under the workspace holder's
  OPRF key and stores both index kinds with ``holder_store.stage_indexes``/``commit_indexes`` (timed:
  ``index_build_seconds``; its VmHWM is the build peak);
* ``blindmatch holder serve`` runs as a subprocess (its VmHWM, read from /proc before it is
  stopped, is the serve peak);
* a requester process runs GetInfo, DownloadIndex, parse, blind, a signed Match session
  (``requester_runner.run_session``, with audit) and the lookups: ``session_seconds``.

Bytes are the protobuf sizes of every Match message both ways plus the DownloadIndex stream.
"""

from __future__ import annotations

import multiprocessing as mp
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from blindmatch.bench.common import BenchConfig, PhaseTimer, SideReport, TimedEngine, collect, index_download_bytes
from blindmatch.tomlfile import load_toml

if TYPE_CHECKING:
    from blindmatch.pilot.workspace import Workspace
from blindmatch.vocabulary import BlindmatchError


class GrpcTransportUnavailable(BlindmatchError, RuntimeError):
    """The gRPC daemons are not part of this tree."""


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("blindmatch.requester.holder_client", "blindmatch.pilot.workspace"))


def _prepare_workspace(root: Path, cfg: BenchConfig) -> Workspace:
    import tomli_w

    from blindmatch.holder.config import HolderLimits, evaluated_batch_bytes
    from blindmatch.pilot import workspace

    big = max(cfg.queries, 65_536)
    max_batch = max(cfg.batch_size, 4096)
    message_bytes = max(HolderLimits().max_message_bytes, evaluated_batch_bytes(max_batch))  # cardinality's proof too
    ws = workspace.create_workspace(
        root, holder_records=8, queries=4,
        holder_limits={"max_session_elements": big, "max_batch": max_batch, "max_message_bytes": message_bytes},
    )
    policy = ws.holder_dir / "policy.toml"
    data = load_toml(policy, BlindmatchError, "policy file")
    for org in data["organisations"].values():
        for name in ("session_max_records", "day_records", "official_day_records"):
            org[name] = max(org[name], 4 * big)
        for name in ("thirty_day_records", "official_thirty_day_records"):
            org[name] = max(org[name], 120 * big)
    policy.write_text(tomli_w.dumps(data))
    return ws


def _builder(cfg: BenchConfig, holder_config: str, conn: Connection) -> None:
    try:
        from blindmatch.bench.common import build_index_bytes
        from blindmatch.bench.data import holder_key_chunks
        from blindmatch.bench.rss import peak_rss_bytes
        from blindmatch.core.index_builder import IndexBuilder
        from blindmatch.holder.config import load_holder_config
        from blindmatch.holder.index_build import load_configured_schema
        from blindmatch.holder.store import commit_indexes, load_or_create_key, stage_indexes
        from blindmatch.vocabulary import Mode

        del build_index_bytes
        config = load_holder_config(Path(holder_config))
        schema = load_configured_schema(config)
        key, _ = load_or_create_key(config.key_file)
        timer = PhaseTimer()
        engine = TimedEngine(cfg.workers, timer)
        t = time.perf_counter()
        builders = [IndexBuilder(key, schema.fingerprint, engine, org, kinds=(Mode.MEMBERSHIP, Mode.CARDINALITY))
                    for org in config.tls.allowed_organisations]
        for chunk in holder_key_chunks(cfg.holder_records, cfg.seed, cfg.chunk, cfg.tokens):
            for builder in builders:
                builder.add(chunk)
        indexes = {(b.organisation, kind): data for b in builders for kind, data in b.finish().items()}
        seconds = time.perf_counter() - t
        engine.close()
        commit_indexes(config.index_dir, stage_indexes(
            config.index_dir, indexes, key_id=key.key_id, schema_fingerprint=schema.fingerprint,
            schema_name=schema.name, schema_version=schema.version, records=cfg.holder_records,
        ))
        conn.send(("ok", {"seconds": seconds, "peak": peak_rss_bytes(), "phases": timer.seconds}))
    except BaseException:
        import traceback

        conn.send(("error", traceback.format_exc()))


def _requester(cfg: BenchConfig, requester_config: str, official_key_file: str, conn: Connection) -> None:
    """The requester side of one measured session; the benchmark plays the official and signs
    its one request with the official's own encrypted key, as ``official approve`` would."""
    import numpy as np

    report = SideReport()
    try:
        import secrets
        from datetime import UTC, datetime, timedelta

        import blindmatch.requester.holder_client as hc
        from blindmatch.audit import AuditLog
        from blindmatch.bench.data import query_keys
        from blindmatch.bench.rss import peak_rss_bytes
        from blindmatch.core.index import EncryptedIndex
        from blindmatch.core.requester import RequesterSession, blind_ahead
        from blindmatch.pilot.workspace import DEMO_PASSPHRASE
        from blindmatch.policy import load_official_key, sign_request
        from blindmatch.requester.config import load_requester_config
        from blindmatch.requester.requests import build_session_request
        from blindmatch.requester.session import run_session
        from blindmatch.transport.wire import MODE_TO_PB
        from blindmatch.vocabulary import Mode

        counted = {"up": 0, "down": 0}

        def count(direction: str, size: int) -> None:
            counted[direction] += size

        timer = PhaseTimer()
        config = load_requester_config(Path(requester_config))
        keys, expected = query_keys(cfg.holder_records, cfg.queries, cfg.seed, cfg.tokens)
        mode = Mode(cfg.mode)
        engine = TimedEngine(cfg.workers, timer)
        official_key = load_official_key(Path(official_key_file), DEMO_PASSPHRASE)
        config.index_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (AuditLog.open(config.audit_dir, config.audit_origin) as audit, hc.HolderClient(config.holder, on_wire=count) as client,
              ThreadPoolExecutor(1, thread_name_prefix="bench-blind-ahead") as ahead):
            t0, blinding = time.perf_counter(), ahead.submit(blind_ahead, keys, mode, engine)  # during the download
            info = client.info()
            wanted = next(i for i in info.indexes if i.kind == MODE_TO_PB[mode])
            path = config.index_dir / f"bench-{mode.value}.bmidx"
            client.download_index(mode, wanted.digest, path, size=wanted.size_bytes)
            t1 = time.perf_counter()
            data = path.read_bytes()
            index = EncryptedIndex.parse(data)
            report.extra["index_bytes"] = len(data)
            report.extra["download_wire_bytes"] = index_download_bytes(data, wanted.digest)
            del data
            t2 = time.perf_counter()
            session_id = secrets.token_bytes(16)
            session = RequesterSession(keys, mode, index, session_id, min(cfg.batch_size, info.limits.max_batch), engine,
                                       organisation=config.organisation, public_key=config.holder.oprf_public_key,
                                       observer=timer, prepared=blinding.result())
            t3 = time.perf_counter()
            issued = datetime.now(UTC).replace(microsecond=0)
            request = build_session_request(
                session, organisation=config.organisation, official=config.official.name,
                legal_basis=config.official.legal_basis, key_id=info.key_id, issued_at=issued,
                lifetime=timedelta(minutes=15),
            )
            envelope = sign_request(request, official_key)
            run_session(client, audit, session, request, envelope, config.holder.name, config.matching.window,
                        info.audit_public_key, lambda _batch: None, [official_key.public_key().public_bytes_raw()])
            t4 = time.perf_counter()
        engine.close()
        matches = int(np.count_nonzero(session.matched)) if mode is Mode.MEMBERSHIP else session.match_count
        report.phases.update(
            download=t1 - t0, parse=t2 - t1, blind_wait=t3 - t2, exchange=t4 - t3, session=t4 - t0,
            unblind=timer.seconds.get("unblind", 0.0), finalize=timer.seconds.get("finalize", 0.0),
            lookup=timer.seconds.get("lookup", 0.0),
        )
        report.extra.update(matches=matches, expected_matches=expected, index_entries=len(index),
                            bytes_up_messages=counted["up"], bytes_down_messages=counted["down"])
        report.peak_rss_bytes = peak_rss_bytes()
        conn.send(("ok", report))
    except BaseException:
        import traceback

        conn.send(("error", traceback.format_exc()))


def _vm_hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_grpc(cfg: BenchConfig) -> tuple[SideReport, SideReport, float]:
    """Returns ``(holder_report, requester_report, wall_seconds)`` like the local transport."""
    if not available():
        raise GrpcTransportUnavailable("--transport grpc needs blindmatch.requester.holder_client and blindmatch.pilot.workspace")
    from blindmatch.pilot import processes

    root = Path(tempfile.mkdtemp(prefix="blindmatch-bench-grpc-"))
    ctx = mp.get_context("spawn")
    holder_proc = None
    try:
        ws = _prepare_workspace(root / "ws", cfg)
        t_wall = time.perf_counter()
        mine, theirs = ctx.Pipe()
        builder = ctx.Process(target=_builder, args=(cfg, str(ws.holder_config), theirs), name="bench-grpc-builder")
        builder.start()
        built = collect(mine, builder, "index builder")
        builder.join()
        holder_proc = processes.HolderProcess(ws.holder_config, root / "logs")
        holder_proc.start()
        mine, theirs = ctx.Pipe()
        requester = ctx.Process(target=_requester, args=(cfg, str(ws.requester_config), str(ws.officials_dir / "alice.key"), theirs), name="bench-grpc-requester")
        requester.start()
        rep_r = collect(mine, requester, "requester")
        requester.join()
        assert holder_proc.process is not None
        serve_peak = _vm_hwm(holder_proc.process.pid)
        wall = time.perf_counter() - t_wall
    finally:
        if holder_proc is not None and holder_proc.process is not None and holder_proc.process.poll() is None:
            holder_proc.terminate()
        shutil.rmtree(root, ignore_errors=True)
    rep_h = SideReport()
    rep_h.phases["index_build"] = 0.0 if cfg.index == "prebuilt" else built["seconds"]
    rep_h.extra.update(
        build_phases=built["phases"],
        peak_rss_build_bytes=built["peak"],
        peak_rss_serve_bytes=serve_peak,
        index_bytes=rep_r.extra["index_bytes"],
        download_wire_bytes=rep_r.extra["download_wire_bytes"],
        bytes_up_messages=rep_r.extra["bytes_up_messages"],
        bytes_down_messages=rep_r.extra["bytes_down_messages"],
        evaluated=cfg.queries,
    )
    rep_h.peak_rss_bytes = max(built["peak"], serve_peak)
    return rep_h, rep_r, wall
