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
                         parse, blind, the message exchange (holder evaluation, unblind,
                         finalize, lookup) and the Close/Closed handshake
    total_seconds        index_build_seconds + session_seconds
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import platform
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

INDEX_CHUNK_BYTES = 262_144  # the holder daemon's default DownloadIndex chunk
SCHEMA_FINGERPRINT = hashlib.sha256(b"blindmatch-bench schema").digest()
MAX_SESSION_ELEMENTS = 2**24 - 2**8  # SPEC.md limit


@dataclass(frozen=True)
class BenchConfig:
    holder_records: int
    queries: int
    mode: str = "membership"
    workers: int | None = None
    transport: str = "local"  # local | grpc
    index: str = "build"  # build | prebuilt
    index_dir: str | None = None  # where prebuilt indexes are kept (built on first use)
    batch_size: int = 4096
    window: int = 4  # blinded batches in flight (requester.toml [matching] window)
    seed: int = 1
    cluster: str | None = None  # dask scheduler address for the index build
    chunk: int = 1 << 16  # holder records per build chunk


@dataclass
class SideReport:
    phases: dict[str, float] = field(default_factory=dict)
    peak_rss_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- shared helpers


def bench_key(seed: int):
    """The holder's OPRF key for a benchmark seed (deterministic, so prebuilt indexes stay valid)."""
    from blindmatch.core.keys import HolderKey
    from blindmatch.crypto.oprf import derive_key_pair

    sk, _ = derive_key_pair(hashlib.sha256(b"blindmatch-bench key %d" % seed).digest(), b"blindmatch-bench")
    return HolderKey(sk)


def default_index_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "blindmatch-bench"


def index_path(index_dir: str | Path, n: int, seed: int, mode: str) -> Path:
    return Path(index_dir) / f"n{n}-s{seed}-{mode}.bmidx"


def machine_info() -> dict[str, Any]:
    import numpy as np

    cpu = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    sodium = "unknown"
    try:
        import rbcl.rbcl as _r

        fn = _r._sodium.sodium_version_string
        fn.restype = __import__("ctypes").c_char_p
        sodium = fn().decode()
    except Exception:
        pass
    try:
        from importlib.metadata import version

        rbcl_version = version("rbcl")
    except Exception:
        rbcl_version = "unknown"
    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "libsodium": sodium,
        "rbcl": rbcl_version,
        "platform": platform.platform(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _index_download_bytes(index: bytes, digest: bytes) -> int:
    """Wire size of the DownloadIndex stream that carries ``index`` (IndexChunk messages)."""
    from blindmatch.v1 import holder_pb2 as pb

    total = 0
    n = len(index)
    offsets = range(0, max(n, 1), INDEX_CHUNK_BYTES)
    for off in offsets:
        last = off + INDEX_CHUNK_BYTES >= n
        # Size without copying the payload: the varint framing of `data` plus the payload.
        head = pb.IndexChunk(offset=off, total_bytes=n, digest=digest if last else b"").ByteSize()
        payload = min(INDEX_CHUNK_BYTES, n - off)
        total += head + 1 + _varint_len(payload) + payload
    return total


def _varint_len(v: int) -> int:
    length = 1
    while v >= 0x80:
        v >>= 7
        length += 1
    return length


def _wire_size(message: Any) -> int:
    from blindmatch.core.messages import Hello
    from blindmatch.transport import wire

    if isinstance(message, (Hello,)) or type(message).__name__ in ("BlindedBatch", "Close"):
        return wire.client_message_to_pb(message).ByteSize()
    return wire.server_message_to_pb(message).ByteSize()


class _Timed:
    """Accumulates wall time per label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, label: str, fn):
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t

        return timed


def _timed_engine(workers: int | None, timer: _Timed):
    from blindmatch.crypto.batch import BatchEngine

    engine = BatchEngine(workers)
    for name in ("blind", "unblind", "blind_evaluate", "evaluate_elements"):
        setattr(engine, name, timer.wrap(name, getattr(engine, name)))
    return engine


# --------------------------------------------------------------------------- index building


def build_index_bytes(cfg: BenchConfig, kinds: tuple[str, ...], timer: _Timed | None = None) -> dict[str, bytes]:
    """Evaluate the holder's records (streamed in chunks) into encoded indexes, one per kind."""
    from blindmatch.bench.data import holder_key_chunks
    from blindmatch.core.index_builder import IndexBuilder
    from blindmatch.vocabulary import Mode

    key = bench_key(cfg.seed)
    modes = tuple(Mode(k) for k in kinds)
    chunks = holder_key_chunks(cfg.holder_records, cfg.seed, cfg.chunk)
    if cfg.cluster:
        from blindmatch.holder.cluster_index import build_index_on_cluster

        built = build_index_on_cluster(chunks, key, SCHEMA_FINGERPRINT, cfg.cluster, kinds=modes)
        return {m.value: data for m, data in built.items()}
    from blindmatch.crypto.batch import BatchEngine

    engine = _timed_engine(cfg.workers, timer) if timer is not None else BatchEngine(cfg.workers)
    try:
        builder = IndexBuilder(key, SCHEMA_FINGERPRINT, engine, kinds=modes)
        for chunk in chunks:
            builder.add(chunk)
        if timer is not None:
            t = time.perf_counter()
        built = builder.finish()
        if timer is not None:
            timer.seconds["encode"] = time.perf_counter() - t
    finally:
        engine.close()
    return {m.value: data for m, data in built.items()}


def _builder_main(cfg: BenchConfig, kinds: tuple[str, ...], out_dir: str, result) -> None:
    from blindmatch.bench.rss import peak_rss_bytes

    timer = _Timed()
    t = time.perf_counter()
    built = build_index_bytes(cfg, kinds, timer)
    seconds = time.perf_counter() - t
    peak_build = peak_rss_bytes()
    paths = {}
    for kind, data in built.items():
        path = index_path(out_dir, cfg.holder_records, cfg.seed, kind)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        paths[kind] = str(path)
    del built
    meta = {
        "holder_records": cfg.holder_records,
        "seed": cfg.seed,
        "kinds": list(kinds),
        "index_build_seconds": seconds,
        "phases": timer.seconds,
        "peak_rss_build_bytes": peak_build,
        "workers": cfg.workers,
        "cluster": cfg.cluster,
        "paths": paths,
        "machine": machine_info(),
    }
    Path(out_dir, f"n{cfg.holder_records}-s{cfg.seed}.json").write_text(json.dumps(meta, indent=1))
    result.send(meta)


def ensure_prebuilt(cfg: BenchConfig, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Build (in a separate process) and store the indexes a prebuilt run needs, unless present."""
    out_dir = Path(cfg.index_dir or default_index_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = kinds or (cfg.mode,)
    meta_path = out_dir / f"n{cfg.holder_records}-s{cfg.seed}.json"
    if all(index_path(out_dir, cfg.holder_records, cfg.seed, k).exists() for k in kinds) and meta_path.exists():
        return json.loads(meta_path.read_text())
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe()
    proc = ctx.Process(target=_builder_main, args=(cfg, kinds, str(out_dir), theirs), name="bench-builder")
    proc.start()
    theirs.close()
    try:
        meta = mine.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"index builder failed (exit code {proc.exitcode})") from None
    proc.join()
    return meta


# --------------------------------------------------------------------------- the two sides


def _holder_main(cfg: BenchConfig, peer, parent) -> None:
    from blindmatch.bench.rss import peak_rss_bytes, reset_peak
    from blindmatch.core.holder import HolderConfig, HolderSession
    from blindmatch.core.index import index_digest
    from blindmatch.core.messages import Hello
    from blindmatch.vocabulary import Mode

    report = SideReport()
    try:
        timer = _Timed()
        key = bench_key(cfg.seed)
        mode = Mode(cfg.mode)
        peer.recv()  # the requester has generated its queries: start the clock-sensitive part
        if cfg.index == "prebuilt":
            t = time.perf_counter()
            index = index_path(cfg.index_dir or default_index_dir(), cfg.holder_records, cfg.seed, cfg.mode).read_bytes()
            report.phases["index_load"] = time.perf_counter() - t
            report.phases["index_build"] = 0.0
        else:
            t = time.perf_counter()
            index = build_index_bytes(cfg, (cfg.mode,), timer)[cfg.mode]
            report.phases["index_build"] = time.perf_counter() - t
            report.extra["build_phases"] = dict(timer.seconds)
            timer.seconds.clear()
        report.extra["peak_rss_build_bytes"] = peak_rss_bytes()
        report.extra["serve_peak_reset"] = reset_peak()
        # --- the index exists: everything from here on is the online part.
        peer.send(b"index-ready")
        t = time.perf_counter()
        digest = index_digest(index)
        report.phases["index_digest"] = time.perf_counter() - t
        peer.send_bytes(index)
        report.extra["index_bytes"] = len(index)
        report.extra["download_wire_bytes"] = _index_download_bytes(index, digest)
        del index
        engine = _timed_engine(cfg.workers, timer)
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
        )
        up = down = 0
        busy = 0.0
        while True:
            message = peer.recv()
            if message is None:
                break
            up += _wire_size(message)
            t = time.perf_counter()
            if isinstance(message, Hello):
                session.receive(message)
                replies = [session.accept()]
            else:
                replies = session.receive(message)
            busy += time.perf_counter() - t
            down += sum(_wire_size(r) for r in replies)
            peer.send(replies)
        engine.close()
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


def _requester_main(cfg: BenchConfig, peer, parent) -> None:
    import numpy as np

    import blindmatch.core.requester as requester_mod
    from blindmatch.bench.data import query_keys
    from blindmatch.bench.rss import peak_rss_bytes
    from blindmatch.core.index import EncryptedIndex
    from blindmatch.core.messages import Close
    from blindmatch.core.requester import RequesterSession, RequesterState
    from blindmatch.vocabulary import Mode

    report = SideReport()
    try:
        timer = _Timed()
        keys, expected = query_keys(cfg.holder_records, cfg.queries, cfg.seed)
        engine = _timed_engine(cfg.workers, timer)
        # Time the pieces of the requester's per-batch work separately (this process only).
        requester_mod.outputs_for = timer.wrap("finalize", requester_mod.outputs_for)
        peer.send(b"ready")
        assert peer.recv() == b"index-ready"
        t0 = time.perf_counter()
        data = peer.recv_bytes()
        t1 = time.perf_counter()
        index = EncryptedIndex.parse(data)
        del data
        t2 = time.perf_counter()
        index.contains = timer.wrap("lookup", index.contains)
        mode = Mode(cfg.mode)
        session = RequesterSession(keys, mode, index, os.urandom(16), min(cfg.batch_size, max(1, len(keys))), engine)
        t3 = time.perf_counter()
        # Like the gRPC client (holder_client.match): a sender thread drains an outbox so that
        # up to `window` blinded batches are in flight while this thread unblinds and looks up.
        outbox: queue.SimpleQueue = queue.SimpleQueue()

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
        while session.state is not RequesterState.CLOSED:
            for reply in peer.recv():
                for out in session.receive(reply):
                    outbox.put(out)  # the Close
            if session.state is RequesterState.OPEN:
                while mode is Mode.CARDINALITY or session.batches_outstanding < window:
                    batch = session.next_batch()
                    if batch is None:
                        break
                    outbox.put(batch)
        t4 = time.perf_counter()
        thread.join()
        peer.send(None)
        engine.close()
        if session.state is not RequesterState.CLOSED:
            raise RuntimeError(f"session ended in state {session.state.name}")
        matches = int(np.count_nonzero(session.matched)) if mode is Mode.MEMBERSHIP else session.match_count
        report.phases.update(
            download=t1 - t0,
            parse=t2 - t1,
            blind=t3 - t2,
            exchange=t4 - t3,
            session=t4 - t0,
            unblind=timer.seconds.get("unblind", 0.0),
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


def _collect(conn, proc, side: str) -> SideReport:
    try:
        status, payload = conn.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"{side} process died (exit code {proc.exitcode})") from None
    if status != "ok":
        raise RuntimeError(f"{side} failed:\n{payload}")
    return payload


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
            for conn in mp_connection.wait(list(pending)):
                side, proc = pending.pop(conn)
                reports[side] = _collect(conn, proc, side)
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


def _finish(cfg: BenchConfig, reports, prebuilt_meta) -> dict[str, Any]:
    from blindmatch.core.index import false_match_bound

    rep_h, rep_r, wall = reports
    build = rep_h.phases.get("index_build", 0.0)
    session = rep_r.phases["session"]
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
        "workers": cfg.workers or __import__("blindmatch.crypto.batch", fromlist=["x"]).default_workers(),
        "matches": rep_r.extra["matches"],
        "expected_matches": rep_r.extra["expected_matches"],
        "index_build_seconds": build,
        "session_seconds": session,
        "total_seconds": build + session,
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
    for name in ("download", "parse", "blind", "exchange", "unblind", "finalize", "lookup"):
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
