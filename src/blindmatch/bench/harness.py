"""``blindmatch bench``: the whole protocol with the holder and the requester in separate processes.

Layout of one run (``transport="local"``)::

    parent ──spawn──> holder process     (builds or loads the index, serves the session)
           ──spawn──> requester process  (generates queries, downloads, blinds, looks up)
    holder <── multiprocessing.Pipe ──> requester   (the core's messages, pickled)

Each side reports its own phase times and its own peak RSS (VmHWM). Bytes are counted as
the protobuf wire encoding of every message (``blindmatch.transport.wire``) and of the index
download chunks, whatever the transport.

Phases and clocks
    index_build_seconds  holder: evaluate every record, hash, encode (0 for a prebuilt index)
    session_seconds      requester: from "index exists" to the end of the session: download,
                         parse, the message exchange (holder evaluation, unblind,
                         finalize, lookup) and the Close/Closed handshake; with a prebuilt
                         index, the blinding too (it runs during the download and parse)
    total_seconds        built index: the requester's wall clock from the start signal (both
                         sides go: the holder builds while the requester blinds, as
                         ``core.requester.blind_ahead`` allows) to the end of the session;
                         prebuilt: session_seconds; gRPC transport (builds first):
                         index_build_seconds + session_seconds
    cpu_seconds          CPU seconds of both processes over the same spans (the requester's
                         blinding ahead counts in "total")
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from blindmatch.bench.common import (
    BENCH_ORGANISATION,
    MAX_SESSION_ELEMENTS,
    SCHEMA_FINGERPRINT,
    BenchConfig,
    PhaseTimer,
    SideReport,
    TimedEngine,
    bench_key,
    build_index_bytes,
    collect,
    default_index_dir,
    ensure_prebuilt,
    index_download_bytes,
    index_path,
    machine_info,
    message_wire_size,
)

if TYPE_CHECKING:
    from blindmatch.core.index import EncryptedIndex
    from blindmatch.core.requester import BlindedInputs
    from blindmatch.vocabulary import Mode

# --------------------------------------------------------------------------- the two sides


def _holder_index(cfg: BenchConfig, timer: PhaseTimer, report: SideReport) -> bytes:
    """The holder's index bytes: loaded when prebuilt, else built (timed into ``report``)."""
    t = time.perf_counter()
    if cfg.index == "prebuilt":
        index = index_path(cfg.index_dir or default_index_dir(), cfg.holder_records, cfg.seed, cfg.mode,
                           cfg.inputs).read_bytes()
        report.phases["index_load"] = time.perf_counter() - t
        report.phases["index_build"] = 0.0
        return index
    index = build_index_bytes(cfg, (cfg.mode,), timer)[cfg.mode]
    report.phases["index_build"] = time.perf_counter() - t
    report.extra["build_phases"] = dict(timer.seconds)
    timer.seconds.clear()
    return index


def _holder_main(cfg: BenchConfig, peer: Connection, parent: Connection) -> None:
    from blindmatch.bench.rss import peak_rss_bytes, reset_peak
    from blindmatch.core.holder import HolderConfig, HolderSession, unsigned_close
    from blindmatch.core.index import index_digest
    from blindmatch.core.messages import Hello, Message
    from blindmatch.vocabulary import Mode

    report = SideReport()
    try:
        timer = PhaseTimer()
        key = bench_key(cfg.seed)
        mode = Mode(cfg.mode)
        peer.recv()  # the requester has generated its queries: start the clock-sensitive part
        cpu_start = time.process_time()
        index = _holder_index(cfg, timer, report)
        report.phases["cpu_build"] = time.process_time() - cpu_start
        report.extra["peak_rss_build_bytes"] = peak_rss_bytes()
        report.extra["serve_peak_reset"] = reset_peak()
        # --- the index exists: everything from here on is the online part.
        peer.send(b"index-ready")
        t = time.perf_counter()
        digest = index_digest(index)
        report.phases["index_digest"] = time.perf_counter() - t
        peer.send_bytes(index)
        report.extra["index_bytes"] = len(index)
        report.extra["download_wire_bytes"] = index_download_bytes(index, digest)
        del index
        engine = TimedEngine(cfg.workers, timer)
        session = HolderSession(
            HolderConfig(
                key.sk,
                key.key_id,
                SCHEMA_FINGERPRINT,
                {mode: digest},
                max_batch=max(cfg.batch_size, 4096),
                max_session_elements=MAX_SESSION_ELEMENTS,
            ),
            engine,
            unsigned_close,
            BENCH_ORGANISATION,
        )
        up = down = 0
        busy = 0.0
        while True:
            message = peer.recv()
            if message is None:
                break
            up += message_wire_size(message)
            t = time.perf_counter()
            replies: list[Message]
            if isinstance(message, Hello):
                session.receive(message)
                replies = [session.accept()]
            else:
                replies = session.receive(message).messages
            busy += time.perf_counter() - t
            down += sum(message_wire_size(r) for r in replies)
            peer.send(replies)
        engine.close()
        report.phases["cpu_online"] = time.process_time() - cpu_start - report.phases["cpu_build"]
        report.phases["serve_busy"] = busy
        report.phases.update({f"holder_{k}": v for k, v in timer.seconds.items()})
        report.extra.update(bytes_up_messages=up, bytes_down_messages=down, evaluated=session.evaluated_count)
        report.extra["peak_rss_serve_bytes"] = peak_rss_bytes()
        report.peak_rss_bytes = max(report.extra["peak_rss_build_bytes"], report.extra["peak_rss_serve_bytes"])
        parent.send(("ok", report))
    except BaseException as exc:
        import traceback

        parent.send(("error", traceback.format_exc()))
        raise SystemExit(1) from exc


def _index_while_blinding(
    cfg: BenchConfig, peer: Connection, keys: list[bytes], mode: Mode, engine: TimedEngine, report: SideReport
) -> tuple[EncryptedIndex, BlindedInputs, dict[str, float]]:
    """Start both sides, blind while the holder builds (prebuilt: while the index downloads), parse the index.

    Blinding needs no index (``core.requester.blind_ahead``), so it runs on the same cores as
    the holder's build. Returns the index, the prepared blinding and the clock readings.
    """
    from blindmatch.core.index import EncryptedIndex
    from blindmatch.core.requester import blind_ahead

    def blind_timed() -> BlindedInputs:
        t = time.perf_counter()
        prepared = blind_ahead(keys, mode, engine)
        report.phases["blind"] = time.perf_counter() - t
        return prepared

    at: dict[str, float] = {}
    with ThreadPoolExecutor(1, thread_name_prefix="bench-blind-ahead") as ahead:
        peer.send(b"ready")
        at["gate"], at["cpu_gate"] = time.perf_counter(), time.process_time()
        blinding = ahead.submit(blind_timed) if cfg.index != "prebuilt" else None
        assert peer.recv() == b"index-ready"
        at["t0"], at["cpu0"] = time.perf_counter(), time.process_time()
        blinding = blinding or ahead.submit(blind_timed)
        data = peer.recv_bytes()
        at["t1"] = time.perf_counter()
        index = EncryptedIndex.parse(data)
        del data
        at["t2"] = time.perf_counter()
        return index, blinding.result(), at


def _requester_main(cfg: BenchConfig, peer: Connection, parent: Connection) -> None:
    import numpy as np

    from blindmatch.bench.data import query_keys
    from blindmatch.bench.rss import peak_rss_bytes
    from blindmatch.core.messages import Close
    from blindmatch.core.pacing import pace
    from blindmatch.core.requester import RequesterSession
    from blindmatch.vocabulary import Mode

    report = SideReport()
    try:
        timer = PhaseTimer()
        keys, expected = query_keys(cfg.holder_records, cfg.queries, cfg.seed, cfg.tokens)
        engine = TimedEngine(cfg.workers, timer)
        mode = Mode(cfg.mode)
        index, prepared, at = _index_while_blinding(cfg, peer, keys, mode, engine, report)
        # The session times its finalize and lookup work through the observer hook.
        session = RequesterSession(keys, mode, index, os.urandom(16), min(cfg.batch_size, max(1, len(keys))), engine,
                                   organisation=BENCH_ORGANISATION, public_key=bench_key(cfg.seed).public_key,
                                   observer=timer, prepared=prepared)
        t3 = time.perf_counter()
        gate, cpu_gate, t0, cpu0, t1, t2 = at["gate"], at["cpu_gate"], at["t0"], at["cpu0"], at["t1"], at["t2"]
        # Like the gRPC client (holder_client.match): a sender thread drains an outbox so that
        # up to `window` blinded batches are in flight while this thread unblinds and looks up.
        outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def sender() -> None:
            while True:
                item = outbox.get()
                peer.send(item)
                if item is None or isinstance(item, Close):
                    return

        thread = threading.Thread(target=sender, name="bench-requester-sender", daemon=True)
        thread.start()
        outbox.put(session.hello())
        window = max(1, cfg.window)
        while not session.closed:
            for reply in peer.recv():
                for out in session.receive(reply).messages:
                    outbox.put(out)  # the Close
            for batch in pace(session, window):
                outbox.put(batch)
        t4, cpu4 = time.perf_counter(), time.process_time()
        thread.join()
        peer.send(None)
        engine.close()
        matches = int(np.count_nonzero(session.matched)) if mode is Mode.MEMBERSHIP else session.match_count
        report.phases.update(
            download=t1 - t0,
            parse=t2 - t1,
            blind_wait=t3 - t2,
            exchange=t4 - t3,
            session=t4 - t0,
            span=t4 - gate,
            cpu_session=cpu4 - cpu0,
            cpu_before_index=cpu0 - cpu_gate,
            unblind=timer.seconds.get("unblind", 0.0),
            composites=timer.seconds.get("composites", 0.0),
            finalize=timer.seconds.get("finalize", 0.0),
            lookup=timer.seconds.get("lookup", 0.0),
        )
        report.extra.update(matches=matches, expected_matches=expected, index_entries=len(index))
        report.peak_rss_bytes = peak_rss_bytes()
        parent.send(("ok", report))
    except BaseException as exc:
        import traceback

        parent.send(("error", traceback.format_exc()))
        raise SystemExit(1) from exc


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Run one benchmark; returns the result record (the ``--json`` line)."""
    if cfg.holder_records < 1 or cfg.queries < 1:
        raise ValueError("need at least one holder record and one query")
    if cfg.mode not in ("membership", "cardinality"):
        raise ValueError(f"unknown mode {cfg.mode!r}")
    prebuilt_meta = None
    if cfg.index == "prebuilt" and cfg.transport != "grpc":
        cfg = replace(cfg, index_dir=str(cfg.index_dir or default_index_dir()))
        prebuilt_meta = ensure_prebuilt(cfg)
    if cfg.transport == "grpc":
        from blindmatch.bench.grpc_transport import run_grpc

        return _finish(cfg, run_grpc(cfg), prebuilt_meta)
    if cfg.transport != "local":
        raise ValueError(f"unknown transport {cfg.transport!r}")
    ctx = mp.get_context("spawn")
    h_peer, r_peer = ctx.Pipe()
    h_mine, h_theirs = ctx.Pipe()
    r_mine, r_theirs = ctx.Pipe()
    holder = ctx.Process(target=_holder_main, args=(cfg, h_peer, h_theirs), name="bench-holder")
    requester = ctx.Process(target=_requester_main, args=(cfg, r_peer, r_theirs), name="bench-requester")
    t = time.perf_counter()
    holder.start()
    requester.start()
    pending = {h_mine: ("holder", holder), r_mine: ("requester", requester)}
    reports: dict[str, SideReport] = {}
    ok = False
    try:
        while pending:  # whichever side finishes (or fails) first
            ready: list[Any] = mp_connection.wait(list(pending))  # the connections it was given
            for conn in ready:
                side, proc = pending.pop(conn)
                reports[side] = collect(conn, proc, side)
        ok = True
    finally:
        for proc in (holder, requester):
            proc.join(timeout=60 if ok else 0.5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    rep_h, rep_r = reports["holder"], reports["requester"]
    wall = time.perf_counter() - t
    return _finish(cfg, (rep_h, rep_r, wall), prebuilt_meta)


def _finish(
    cfg: BenchConfig, reports: tuple[SideReport, SideReport, float], prebuilt_meta: dict[str, Any] | None
) -> dict[str, Any]:
    from blindmatch.core.index import false_match_bound

    rep_h, rep_r, wall = reports
    build = rep_h.phases.get("index_build", 0.0)
    session = rep_r.phases["session"]
    # The gRPC transport builds before the requester starts: there the two add up.
    total = session if cfg.index == "prebuilt" else rep_r.phases.get("span", build + session)
    index_bytes = rep_h.extra["index_bytes"]
    entries = rep_r.extra["index_entries"]
    bytes_up = rep_h.extra["bytes_up_messages"]
    bytes_down = rep_h.extra["bytes_down_messages"] + rep_h.extra["download_wire_bytes"]
    q = cfg.queries
    result = {
        "holder_records": cfg.holder_records,
        "queries": q,
        "mode": cfg.mode,
        "transport": cfg.transport,
        "index": cfg.index,
        "inputs": cfg.inputs,
        "workers": cfg.workers or __import__("blindmatch.crypto.batch", fromlist=["x"]).default_workers(),
        "matches": rep_r.extra["matches"],
        "expected_matches": rep_r.extra["expected_matches"],
        "index_build_seconds": build,
        "session_seconds": session,
        "total_seconds": total,
        # CPU seconds (all threads) of the same spans: on a shared machine, the work done.
        "cpu_seconds": {
            "holder_build": rep_h.phases.get("cpu_build", 0.0),
            "online": rep_h.phases.get("cpu_online", 0.0) + rep_r.phases.get("cpu_session", 0.0),
            "total": rep_h.phases.get("cpu_build", 0.0) + rep_h.phases.get("cpu_online", 0.0)
            + rep_r.phases.get("cpu_before_index", 0.0) + rep_r.phases.get("cpu_session", 0.0),
        },
        "index_bytes": index_bytes,
        "index_bits_per_entry": 8 * index_bytes / max(entries, 1),
        "false_match_bound": false_match_bound(entries, q),
        "bytes_up": bytes_up,
        "bytes_down": bytes_down,
        "bytes_up_per_query": bytes_up / q,
        "bytes_down_per_query_excl_index": rep_h.extra["bytes_down_messages"] / q,
        "lookup_seconds_per_query": rep_r.phases["lookup"] / q,
        "peak_rss_holder_bytes": rep_h.peak_rss_bytes,
        "peak_rss_holder_build_bytes": rep_h.extra["peak_rss_build_bytes"],
        "peak_rss_holder_serve_bytes": rep_h.extra["peak_rss_serve_bytes"],
        "peak_rss_requester_bytes": rep_r.peak_rss_bytes,
        "holder_evaluations_per_second": (
            rep_h.extra["evaluated"] / rep_h.phases["holder_blind_evaluate"] if rep_h.phases.get("holder_blind_evaluate") else None
        ),
        "phases": {"holder": rep_h.phases, "requester": rep_r.phases, "holder_build": rep_h.extra.get("build_phases", {})},
        "wall_seconds": wall,
        "cluster": cfg.cluster,
        "machine": machine_info(),
    }
    if prebuilt_meta is not None:
        result["prebuilt_index_build_seconds"] = prebuilt_meta.get("index_build_seconds")
        result["prebuilt_peak_rss_build_bytes"] = prebuilt_meta.get("peak_rss_build_bytes")
    return result


def format_report(result: dict[str, Any]) -> str:
    mib = 1 / 2**20
    ph = result["phases"]
    lines = [
        f"blindmatch bench: {result['holder_records']} holder records, {result['queries']} queries, "
        f"{result['mode']}, transport={result['transport']}, index={result['index']}, workers={result['workers']}",
        f"  matches               {result['matches']} (expected {result['expected_matches']})",
        f"  index build           {result['index_build_seconds']:.3f} s",
        f"  session (online)      {result['session_seconds']:.3f} s",
    ]
    for name in ("download", "parse", "blind", "blind_wait", "exchange", "unblind", "finalize", "lookup"):
        if name in ph["requester"]:
            lines.append(f"    requester {name:<11} {ph['requester'][name]:.3f} s")
    if "holder_blind_evaluate" in ph["holder"]:
        lines.append(f"    holder evaluate       {ph['holder']['holder_blind_evaluate']:.3f} s")
    lines += [
        f"  total                 {result['total_seconds']:.3f} s",
        f"  index                 {result['index_bytes']} bytes ({result['index_bits_per_entry']:.2f} bits/entry)",
        f"  bytes up / down       {result['bytes_up']} / {result['bytes_down']} "
        f"({result['bytes_up_per_query']:.1f} B/query up, {result['bytes_down_per_query_excl_index']:.1f} B/query down + index)",
        f"  false-match bound     {result['false_match_bound']:.3g} (any query of the session)",
        f"  peak RSS holder       {result['peak_rss_holder_bytes'] * mib:.1f} MiB "
        f"(build {result['peak_rss_holder_build_bytes'] * mib:.1f}, serve {result['peak_rss_holder_serve_bytes'] * mib:.1f})",
        f"  peak RSS requester    {result['peak_rss_requester_bytes'] * mib:.1f} MiB",
    ]
    return "\n".join(lines)
