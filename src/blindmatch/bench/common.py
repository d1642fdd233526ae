"""What the benchmark's transports share: configuration, reports, timing hooks, index building.

The timing goes through hooks the core and the engine offer (``PhaseTimer.measure`` is the
requester session's ``Observer``; ``TimedEngine`` is a ``BatchEngine``): no production
module is patched at run time.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import platform
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from blindmatch.core.keys import HolderKey
from blindmatch.core.messages import Hello
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import Mode as CryptoMode

# The wire encoding counts every message's bytes. Imported here, when a side's process
# starts, as a daemon imports it at start-up: a first import inside the timed span cost the
# holder 26 ms of CPU (protobuf's descriptors) on the balanced row's critical path.
from blindmatch.transport import wire
from blindmatch.v1 import holder_pb2 as pb

INDEX_CHUNK_BYTES = 262_144  # the holder daemon's default DownloadIndex chunk
SCHEMA_FINGERPRINT = hashlib.sha256(b"blindmatch-bench schema").digest()
# The requesting organisation of in-memory benchmark sessions: the index is built for it.
BENCH_ORGANISATION = "Bench Requester"
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
    inputs: str = "keys"  # keys | tokens (eligibility tokens of the same keys, SPEC.md 15.3)

    @property
    def tokens(self) -> bool:
        return self.inputs == "tokens"


@dataclass
class SideReport:
    phases: dict[str, float] = field(default_factory=dict)
    peak_rss_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- shared helpers


def bench_key(seed: int) -> HolderKey:
    """The holder's OPRF key for a benchmark seed (deterministic, so prebuilt indexes stay valid)."""
    from blindmatch.crypto.oprf import derive_key_pair

    sk, _ = derive_key_pair(hashlib.sha256(b"blindmatch-bench key %d" % seed).digest(), b"blindmatch-bench")
    return HolderKey(sk)


def default_index_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "blindmatch-bench"


# Bumped whenever what an index holds changes (poprf1: POPRF under the bench organisation's info),
# so a cache of an older format is rebuilt rather than matching nothing.
INDEX_CACHE_FORMAT = "poprf1"


def index_path(index_dir: str | Path, n: int, seed: int, mode: str, inputs: str = "keys") -> Path:
    over = "" if inputs == "keys" else f"-{inputs}"
    return Path(index_dir) / f"n{n}-s{seed}-{mode}-{INDEX_CACHE_FORMAT}{over}.bmidx"


def meta_path(index_dir: str | Path, cfg: BenchConfig) -> Path:
    over = "" if cfg.inputs == "keys" else f"-{cfg.inputs}"
    return Path(index_dir) / f"n{cfg.holder_records}-s{cfg.seed}-{INDEX_CACHE_FORMAT}{over}.json"


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
    from blindmatch.crypto.sodium import sodium_version

    sodium = sodium_version()
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


def index_download_bytes(index: bytes, digest: bytes) -> int:
    """Wire size of the DownloadIndex stream that carries ``index`` (IndexChunk messages)."""
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


def message_wire_size(message: Any) -> int:
    """Bytes of ``message`` in its protobuf wire encoding."""
    if isinstance(message, (Hello,)) or type(message).__name__ in ("BlindedBatch", "Close"):
        return int(wire.client_message_to_pb(message).ByteSize())
    return int(wire.server_message_to_pb(message).ByteSize())


class PhaseTimer:
    """Accumulates wall time per phase; the core's ``Observer`` hook (``measure``) and the engine's."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def measure(self, phase: str) -> Iterator[None]:
        t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t


class TimedEngine(BatchEngine):
    """A ``BatchEngine`` that times each of its batch operations (benchmarks only)."""

    def __init__(self, workers: int | None, timer: PhaseTimer) -> None:
        super().__init__(workers)
        self._timer = timer

    def blind(self, inputs: Sequence[bytes], blinds: bytes) -> bytes:
        with self._timer.measure("blind"):
            return super().blind(inputs, blinds)

    def unblind(self, blinds: bytes, evaluated: bytes) -> bytes:
        with self._timer.measure("unblind"):
            return super().unblind(blinds, evaluated)

    def blind_evaluate(self, sk: bytes, blinded: bytes) -> bytes:
        with self._timer.measure("blind_evaluate"):
            return super().blind_evaluate(sk, blinded)

    def evaluate_elements(self, sk: bytes, inputs: Sequence[bytes]) -> bytes:
        with self._timer.measure("evaluate_elements"):
            return super().evaluate_elements(sk, inputs)

    def compute_composites(self, mode: CryptoMode, b: bytes, c: bytes, d: bytes, k: bytes | None = None) -> tuple[bytes, bytes]:
        """The DLEQ proofs' extra work on either side (issue 11's proof cost, ``composites``)."""
        with self._timer.measure("composites"):
            return super().compute_composites(mode, b, c, d, k)


# --------------------------------------------------------------------------- index building


def build_index_bytes(cfg: BenchConfig, kinds: tuple[str, ...], timer: PhaseTimer | None = None) -> dict[str, bytes]:
    """Evaluate the holder's records (streamed in chunks) into encoded indexes, one per kind."""
    from blindmatch.bench.data import holder_key_chunks
    from blindmatch.core.index_builder import IndexBuilder
    from blindmatch.vocabulary import Mode

    key = bench_key(cfg.seed)
    modes = tuple(Mode(k) for k in kinds)
    chunks = holder_key_chunks(cfg.holder_records, cfg.seed, cfg.chunk, cfg.tokens)
    if cfg.cluster:
        from blindmatch.holder.cluster_index import ClusterIndexBuilder

        with ClusterIndexBuilder(key, SCHEMA_FINGERPRINT, cfg.cluster, BENCH_ORGANISATION, kinds=modes) as cluster:
            built = cluster.build(chunks)
        return {m.value: data for m, data in built.items()}
    engine = TimedEngine(cfg.workers, timer) if timer is not None else BatchEngine(cfg.workers)
    try:
        builder = IndexBuilder(key, SCHEMA_FINGERPRINT, engine, BENCH_ORGANISATION, kinds=modes)
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


def _builder_main(cfg: BenchConfig, kinds: tuple[str, ...], out_dir: str, result: Connection) -> None:
    from blindmatch.bench.rss import peak_rss_bytes

    timer = PhaseTimer()
    t = time.perf_counter()
    built = build_index_bytes(cfg, kinds, timer)
    seconds = time.perf_counter() - t
    peak_build = peak_rss_bytes()
    paths = {}
    for kind, data in built.items():
        path = index_path(out_dir, cfg.holder_records, cfg.seed, kind, cfg.inputs)
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
    meta_path(out_dir, cfg).write_text(json.dumps(meta, indent=1))
    result.send(meta)


def ensure_prebuilt(cfg: BenchConfig, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Build (in a separate process) and store the indexes a prebuilt run needs, unless present."""
    out_dir = Path(cfg.index_dir or default_index_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = kinds or (cfg.mode,)
    meta_file = meta_path(out_dir, cfg)
    if all(index_path(out_dir, cfg.holder_records, cfg.seed, k, cfg.inputs).exists() for k in kinds) and meta_file.exists():
        return dict(json.loads(meta_file.read_text()))
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
    return dict(meta)


def collect(conn: Connection, proc: Any, side: str) -> Any:
    try:
        status, payload = conn.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"{side} process died (exit code {proc.exitcode})") from None
    if status != "ok":
        raise RuntimeError(f"{side} failed:\n{payload}")
    return payload
