"""Eligibility tokens (issue 12, item 8): what the issuer stage costs.

Three measurements, each in one run so that a shared machine's load hits the compared
sides alike (they alternate within each repeat; ratios are of medians):

1. **Issuer throughput** against the libsodium floor (one ``crypto_scalarmult_ristretto255``
   per element, ctypes loop on all threads, ``bench.floor``): the issuer's
   ``BlindEvaluate`` plus batched DLEQ proof on one batch (``blind_evaluate_proven``), and
   the issuer service's whole evaluation (``BlindEvaluator.evaluate``: checks, proof,
   durable per-epoch count and audit entry).
2. **The holder's build end to end**, from a records CSV (synthetic people through the
   default schema) to the committed indexes, without tokens, with the token stage
   against an in-process issuer, and with the token stage against a live issuer daemon
   over mutual TLS on loopback (blind, proven, batches of 65 536, spooled for resuming).
3. **The prebuilt-index session** (``blindmatch bench --index prebuilt``: holder and
   requester processes, download, parse, blind, evaluate, unblind, finalise, look up) on
   eligibility tokens and on plain match keys of the same count, alternating.

    .venv/bin/python benchmarks/issuer_bench.py --out benchmarks/results/issuer.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from blindmatch.bench.common import BenchConfig, machine_info
from blindmatch.bench.floor import _elements, raw_scalarmult_rate
from blindmatch.bench.harness import run_bench
from blindmatch.crypto import group
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import VOPRF
from blindmatch.holder.config import HolderNodeConfig, load_holder_config
from blindmatch.holder.index_build import build_index
from blindmatch.holder.token_spool import TokenSpool
from blindmatch.holder.tokens import IssuerTokens, parse_epoch
from blindmatch.issuer.client import IssuerClient
from blindmatch.issuer.config import IssuerConfig, load_issuer_config
from blindmatch.issuer.epochs import epoch_key_pair
from blindmatch.issuer.evaluation import BlindEvaluator
from blindmatch.issuer.keys import create_seed, create_signing_key, read_seed
from blindmatch.issuer.service import IssuerDaemon
from blindmatch.pilot.workspace import create_workspace
from blindmatch.transport.pki import init_pki, slug

ISSUER_ORG = "County Courts"


def _issuer(root: Path, holder_org: str, records: int, pki: Path | None) -> IssuerConfig:
    """An issuer that evaluates for ``holder_org`` with room for every repeat (margin 1)."""
    root.mkdir(parents=True, exist_ok=True)
    tls = ""
    if pki is not None:
        server = pki / slug(ISSUER_ORG)
        tls = (f'\n[issuer.tls]\ncert = "{server / "server.crt"}"\nkey = "{server / "server.key"}"\n'
               f'client_ca = "{pki / "ca.crt"}"\n')
    (root / "issuer.toml").write_text(
        '[issuer]\nname = "court.example"\nseed_file = "issuer.seed"\nsigning_key = "issuer.key"\n'
        'state_dir = "state"\nlisten = "127.0.0.1:0"\n'
        f'[[issuer.holder]]\norganisation = "{holder_org}"\nrecords = {records}\nmargin = 1.0\n' + tls)
    config = load_issuer_config(root / "issuer.toml")
    if not config.seed_file.exists():
        create_seed(config.seed_file)
        create_signing_key(config.signing_key)
    return config


def issuer_throughput(root: Path, count: int, repeats: int, workers: int | None, backend: str) -> dict[str, Any]:
    """Elements per second on ``backend``: the floor, BlindEvaluate + proof, the issuer service's evaluate."""
    holder_org = "Example Tax Authority"
    config = _issuer(root / f"throughput-{backend}", holder_org, count * repeats * 2, None)
    engine = BatchEngine(workers, backend=backend)
    threads = engine.workers
    evaluator = BlindEvaluator(config, engine)
    epoch, pk = evaluator.public_key()
    sk = epoch_key_pair(read_seed(config.seed_file), epoch)[0]
    keys = [b"bench holder key %d" % i for i in range(count)]
    blinds = b"".join(group.random_scalar() for _ in range(count))
    blinded = engine.blind_in_mode(VOPRF, keys, blinds)
    floor_elements = _elements(count)
    pool = ThreadPoolExecutor(threads) if threads > 1 else None
    rates: dict[str, list[float]] = {"floor": [], "blind_evaluate_proven": [], "issuer_service_evaluate": []}
    try:
        for _ in range(repeats):
            rates["floor"].append(raw_scalarmult_rate(sk, floor_elements, threads, pool))
            t = time.perf_counter()
            engine.blind_evaluate_proven(sk, pk, blinded)
            rates["blind_evaluate_proven"].append(count / (time.perf_counter() - t))
            t = time.perf_counter()
            evaluator.evaluate(holder_org, blinded, epoch.name)
            rates["issuer_service_evaluate"].append(count / (time.perf_counter() - t))
    finally:
        evaluator.close()
        engine.close()
        if pool is not None:
            pool.shutdown()
    med = {k: statistics.median(v) for k, v in rates.items()}
    return {
        "batch_elements": count, "threads": threads, "repeats": repeats, "backend": engine.backend.name,
        "rates_per_second": rates, "median_per_second": med,
        # >= 1: how many times slower than one bare scalar multiplication per element
        "blind_evaluate_proven_slowdown_vs_floor": med["floor"] / med["blind_evaluate_proven"],
        "issuer_service_slowdown_vs_floor": med["floor"] / med["issuer_service_evaluate"],
    }


def _timed_build(records: Path, config: HolderNodeConfig, engine: BatchEngine, tokens: IssuerTokens | None) -> float:
    t = time.perf_counter()
    build_index(records, config, progress=False, engine=engine, tokens=tokens)
    return time.perf_counter() - t


def _build_with_local_issuer(records: Path, config: HolderNodeConfig, issuer: IssuerConfig,
                             engine: BatchEngine) -> tuple[float, int]:
    """The build with the issuer evaluating in this process (no transport): seconds, elements."""
    evaluator = BlindEvaluator(issuer, engine)
    try:
        epoch, pk = evaluator.public_key()
        tokens = IssuerTokens(lambda b: evaluator.evaluate(config.organisation, b, epoch.name), pk, epoch, engine)
        return _timed_build(records, config, engine, tokens), tokens.evaluated
    finally:
        evaluator.close()


def _build_with_issuer_daemon(records: Path, config: HolderNodeConfig, port: int, pki: Path,
                              engine: BatchEngine) -> float:
    """The build as ``holder index`` runs it with ``[holder.issuer]``: mutual TLS, spool and all."""
    files = pki / slug(config.organisation)
    t = time.perf_counter()
    with IssuerClient(f"127.0.0.1:{port}", pki / "ca.crt", files / "client.crt", files / "client.key") as client:
        info = client.epoch()
        epoch = parse_epoch(info.epoch, info.not_before, info.expires)
        spool = TokenSpool(config.index_dir, epoch.name, info.public_key, 65_536)
        tokens = IssuerTokens(lambda b: client.evaluate(epoch.name, b), info.public_key, epoch, engine, spool=spool)
        build_index(records, config, progress=False, engine=engine, tokens=tokens)
    return time.perf_counter() - t


def holder_build(root: Path, records: int, repeats: int) -> dict[str, Any]:
    """Seconds for the holder's whole build without tokens, with an in-process issuer, with a live one."""
    ws = create_workspace(root / "workspace", holder_records=records, queries=10)
    config = load_holder_config(ws.holder_config)
    pki = root / "issuer-pki"
    init_pki(pki, [ISSUER_ORG, config.organisation], ["127.0.0.1"])
    issuer = _issuer(root / "issuer", config.organisation, records * (repeats + 1) * 2, pki)
    engine, issuer_engine = BatchEngine(), BatchEngine()
    daemon = IssuerDaemon(issuer, issuer_engine)
    daemon.start()
    seconds: dict[str, list[float]] = {"plain_keys": [], "tokens_in_process_issuer": [], "tokens_issuer_daemon": []}
    elements = 0
    try:
        for _ in range(repeats):
            seconds["plain_keys"].append(_timed_build(ws.records, config, engine, None))
            local, elements = _build_with_local_issuer(ws.records, config, issuer, engine)
            seconds["tokens_in_process_issuer"].append(local)
            seconds["tokens_issuer_daemon"].append(_build_with_issuer_daemon(ws.records, config, daemon.port, pki, engine))
    finally:
        daemon.stop()
        issuer_engine.close()
        engine.close()
    med = {k: statistics.median(v) for k, v in seconds.items()}
    stage = med["tokens_issuer_daemon"] - med["plain_keys"]
    return {
        "records": records, "token_elements": elements, "repeats": repeats, "seconds": seconds, "median_seconds": med,
        "token_stage_seconds_in_process": med["tokens_in_process_issuer"] - med["plain_keys"],
        "token_stage_seconds_daemon": stage,
        "build_with_tokens_vs_plain_daemon": med["tokens_issuer_daemon"] / med["plain_keys"],
        "token_stage_elements_per_second_daemon": elements / stage if stage > 0 else None,
    }


def prebuilt_sessions(holder: int, queries: int, repeats: int, index_dir: Path) -> dict[str, Any]:
    """Session seconds against a prebuilt index, on tokens and on plain keys of the same count, alternating."""
    seconds: dict[str, list[float]] = {"keys": [], "tokens": []}
    for _ in range(repeats):
        for inputs in ("keys", "tokens"):
            result = run_bench(BenchConfig(holder_records=holder, queries=queries, index="prebuilt",
                                           index_dir=str(index_dir), inputs=inputs))
            if result["matches"] != result["expected_matches"]:
                raise RuntimeError(f"{inputs}: {result['matches']} matches, expected {result['expected_matches']}")
            seconds[inputs].append(result["session_seconds"])
    med = {k: statistics.median(v) for k, v in seconds.items()}
    return {"holder_records": holder, "queries": queries, "repeats": repeats, "session_seconds": seconds,
            "median_session_seconds": med, "tokens_vs_keys": med["tokens"] / med["keys"]}


def _available(names: list[str]) -> list[str]:
    """The backends that run here (the native one needs its compiled extension)."""
    from blindmatch.crypto.backend import BackendUnavailableError, select

    ok = []
    for name in names:
        try:
            select(name)
        except BackendUnavailableError:
            continue
        ok.append(name)
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--issuer-batch", type=int, default=1 << 16, help="elements per BlindEvaluate (the holder's batch)")
    parser.add_argument("--throughput-repeats", type=int, default=3)
    parser.add_argument("--backends", default="libsodium,native")
    parser.add_argument("--build-records", type=int, default=1 << 13)
    parser.add_argument("--session-holder", type=int, default=1 << 18)
    parser.add_argument("--session-queries", type=int, default=1 << 14)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--build-repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--index-dir", type=Path, default=None, help="prebuilt indexes (default ~/.cache/blindmatch-bench)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="issuer-bench-") as tmp:
        root = Path(tmp)
        result = {
            "issuer_throughput": [issuer_throughput(root, args.issuer_batch, args.throughput_repeats, args.workers, b)
                                  for b in _available(args.backends.split(","))],
            "holder_build": holder_build(root, args.build_records, args.build_repeats),
            "prebuilt_sessions": prebuilt_sessions(args.session_holder, args.session_queries, args.repeats,
                                                   args.index_dir or Path.home() / ".cache" / "blindmatch-bench"),
            "machine": machine_info(),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))


if __name__ == "__main__":
    main()
