"""The native ristretto255 backend against libsodium, per operation and on issue 18's three rows.

    .venv/bin/python benchmarks/native_bench.py                    # micro + rows, 3 repeats (~6 min)
    .venv/bin/python benchmarks/native_bench.py --skip-rows        # per-operation rates only (~1 min)
    .venv/bin/python benchmarks/native_bench.py --repeats 5 --openmined   # on a quiet machine
    .venv/bin/python benchmarks/native_bench.py --skip-micro --backends native --rows balanced_2^14,unbalanced_2^20x2^14_online \
        --repeats 5 --openmined --secretflow-python /tmp/spu_venv/bin/python     # the targets, native only

Per operation (``micro``): one thread, straight into each backend's batch call, on 2^13
random inputs; rates in operations per second per core. ``mult_one`` is one scalar times
many elements (BlindEvaluate, index build), ``mult_many`` one scalar per element (blind,
unblind), ``h2g`` RFC 9497 HashToGroup alone, ``h2g_mult`` HashToGroup times a scalar
(the index build's per-record work), ``decode`` RFC 9496 validation. Then the same
``BatchEngine`` calls on all cores.

Rows (``blindmatch bench`` in separate holder/requester processes, backend chosen by
``BLINDMATCH_CRYPTO_BACKEND``): balanced 2^14 x 2^14 (total), unbalanced 2^20 holder x
2^14 queries against a prebuilt index (session), holder build of 2^20 records. Backends
are interleaved per repeat so background load hits both alike; figures are medians.
SecretFlow's figures are the reference table of issue 18 (spu 0.9.5 on this machine type);
with ``--secretflow-python`` (the interpreter of a separate venv holding ``spu==0.9.5``, see
``benchmarks/secretflow_psi.py``) the balanced row also runs SecretFlow's ECDH and RR22 PSI
interleaved with blindmatch, and its ratio uses that measured ECDH median; the unbalanced
row runs SecretFlow's UB-PSI (``benchmarks/secretflow_ub_psi.py``: its offline phase once,
then as many online phases as blindmatch repeats, after them) and compares the online
phase. With
``--openmined`` the balanced and unbalanced rows also time OpenMined's full run of the same
size once (issue 11's "at most 0.05x of OpenMined's full run"). Each run records the
seconds each side spent on DLEQ composites (``composites_seconds``, the proofs' extra work)
and the CPU seconds of the row's span on both sides (``cpu_seconds``; SecretFlow's too), the
work done, which a shared machine's load disturbs less than wall time.

Results: ``benchmarks/results/native.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rbcl

from blindmatch.bench.harness import BenchConfig, machine_info, run_bench
from blindmatch.crypto import backend, oprf
from blindmatch.crypto.batch import BatchEngine

RESULTS = Path(__file__).parent / "results"
SECRETFLOW_SECONDS = {"balanced_2^14": {"ecdh": 0.31, "rr22": 0.12}, "unbalanced_2^20x2^14_online": 0.48, "holder_build_2^20": 9.8}
# Which span of ``cpu_seconds`` (harness) matches each row's wall-clock metric.
CPU_SPAN = {"total_seconds": "total", "session_seconds": "online", "index_build_seconds": "holder_build"}
ROWS = {
    "balanced_2^14": (BenchConfig(1 << 14, 1 << 14), "total_seconds"),
    "unbalanced_2^20x2^14_online": (BenchConfig(1 << 20, 1 << 14, index="prebuilt"), "session_seconds"),
    "holder_build_2^20": (BenchConfig(1 << 20, 1 << 10), "index_build_seconds"),
}


def _rate(n: int, fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def micro(n: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median operations per second, one thread and all cores, for every backend this machine runs."""
    uniform = os.urandom(64 * n)
    points = b"".join(rbcl.crypto_core_ristretto255_from_hash(uniform[i : i + 64]) for i in range(0, len(uniform), 64))
    sk, blinds = rbcl.crypto_core_ristretto255_scalar_random(), b"".join(rbcl.crypto_core_ristretto255_scalar_random() for _ in range(n))
    messages = [os.urandom(40) for _ in range(n)]
    names = ["libsodium", *(f"native:{p}" for p in backend.native_paths())]
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in names}
    for _ in range(repeats):
        for name in names:
            be = backend.select(name)
            ops: dict[str, Callable[[], object]] = {
                "mult_one": lambda be=be: be.mult(sk, points),
                "mult_many": lambda be=be: be.mult(blinds, points),
                "h2g": lambda be=be: be.hash_to_group(messages, oprf.HASH_TO_GROUP_DST, b""),
                "h2g_mult": lambda be=be: be.hash_to_group(messages, oprf.HASH_TO_GROUP_DST, sk),
            }
            if isinstance(be, backend.NativeBackend):
                ops["decode"] = lambda be=be: be.validate(points)
            else:
                ops["decode"] = lambda: [rbcl.crypto_core_ristretto255_is_valid_point(points[i : i + 32]) for i in range(0, len(points), 32)]
            engine = BatchEngine(backend=name)
            ops["engine_blind_evaluate_all_cores"] = lambda e=engine: e.blind_evaluate(sk, points)
            ops["engine_evaluate_elements_all_cores"] = lambda e=engine: e.evaluate_elements(sk, messages)
            for op, fn in ops.items():
                samples[name].setdefault(op, []).append(_rate(n, fn))
            engine.close()
    return {name: {op: round(statistics.median(v)) for op, v in ops_.items()} for name, ops_ in samples.items()}


def secretflow_balanced(python: str, n: int, m: int) -> dict[str, float]:
    """One SecretFlow ECDH and one RR22 run (seconds), in the interpreter that has ``spu``."""
    script = Path(__file__).parent / "secretflow_psi.py"
    done = subprocess.run([python, str(script), "--n", str(n), "--m", str(m), "--repeats", "1"], capture_output=True, text=True, check=True)
    # spu logs to stdout too; the report is the line that starts the JSON object
    report = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith('{"spu"')))
    return {
        "ecdh": report["PROTOCOL_ECDH"]["median_seconds"],
        "rr22": report["PROTOCOL_RR22"]["median_seconds"],
        "ecdh_cpu": report["PROTOCOL_ECDH"]["median_cpu_seconds"],
        "rr22_cpu": report["PROTOCOL_RR22"]["median_cpu_seconds"],
    }


def _proof_share(result: dict[str, Any]) -> dict[str, float]:
    """Seconds of DLEQ composites (the proofs' extra work) on each side of one session."""
    phases = result["phases"]
    return {"holder": phases["holder"].get("holder_composites", 0.0), "requester": phases["requester"].get("composites", 0.0)}


def _secretflow_base(row: str, measured: dict[str, list[float]], entry: dict[str, Any]) -> float:
    """The SecretFlow seconds a row's ratio uses: measured in this run when there are any."""
    reference = SECRETFLOW_SECONDS[row]
    entry["secretflow_seconds_issue_table"] = reference
    base = reference["ecdh"] if isinstance(reference, dict) else reference
    if measured["ecdh"]:
        entry["secretflow_measured_runs"] = measured
        base = statistics.median(measured["ecdh"])
        entry["secretflow_measured_median"] = {k: statistics.median(v) for k, v in measured.items() if v}
    return float(base)


def secretflow_unbalanced(python: str, n: int, m: int, repeats: int) -> dict[str, Any]:
    """SecretFlow UB-PSI: its offline phase once, then ``repeats`` online phases (seconds, CPU seconds)."""
    script = Path(__file__).parent / "secretflow_ub_psi.py"
    done = subprocess.run(
        [python, str(script), "--n", str(n), "--m", str(m), "--repeats", str(repeats)], capture_output=True, text=True, check=True
    )
    report: dict[str, Any] = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith('{"spu"')))
    return report


def rows(repeats: int, with_openmined: bool, secretflow_python: str | None, names: list[str], backends: list[str]) -> dict[str, Any]:
    """Median seconds of the rows per backend, interleaved, plus ratios to SecretFlow (and OpenMined)."""
    out: dict[str, Any] = {}
    for row in names:
        cfg, key = ROWS[row]
        runs: dict[str, list[float]] = {name: [] for name in backends}
        proofs: dict[str, list[dict[str, float]]] = {name: [] for name in backends}
        cpu: dict[str, list[float]] = {name: [] for name in backends}
        measured: dict[str, list[float]] = {"ecdh": [], "rr22": [], "ecdh_cpu": [], "rr22_cpu": []}
        for _ in range(repeats):
            for name in runs:
                os.environ[backend.BACKEND_ENV] = name if name == "libsodium" else "auto"
                result = run_bench(cfg)
                runs[name].append(result[key])
                proofs[name].append(_proof_share(result))
                cpu[name].append(result["cpu_seconds"][CPU_SPAN[key]])
            if secretflow_python and row == "balanced_2^14":
                for proto, seconds in secretflow_balanced(secretflow_python, cfg.holder_records, cfg.queries).items():
                    measured[proto].append(seconds)
        os.environ.pop(backend.BACKEND_ENV, None)
        if secretflow_python and row == "unbalanced_2^20x2^14_online":  # ECDH-OPRF (FourQ) with a cache
            ub = secretflow_unbalanced(secretflow_python, cfg.holder_records, cfg.queries, repeats)
            measured["ecdh"] = [r["seconds"] for r in ub["online"]["runs"]]
            measured["ecdh_cpu"] = [r["cpu_seconds"] for r in ub["online"]["runs"]]
            measured["offline"] = [ub["offline"]["seconds"]]
        entry: dict[str, Any] = {"metric": key, "runs": runs, "median": {k: statistics.median(v) for k, v in runs.items()}}
        entry["composites_seconds"] = proofs
        entry["cpu_seconds"] = {"runs": cpu, "median": {k: statistics.median(v) for k, v in cpu.items()}}
        base = _secretflow_base(row, measured, entry)
        entry["ratio_vs_secretflow"] = {k: round(v / base, 3) for k, v in entry["median"].items()}
        if measured["ecdh_cpu"]:
            sf_cpu = statistics.median(measured["ecdh_cpu"])
            entry["cpu_ratio_vs_secretflow_ecdh"] = {k: round(v / sf_cpu, 3) for k, v in entry["cpu_seconds"]["median"].items()}
        if with_openmined and row in ("balanced_2^14", "unbalanced_2^20x2^14_online"):
            from blindmatch.bench import openmined

            full = openmined.run_openmined(cfg.holder_records, cfg.queries)["total_seconds"]
            entry["openmined_total_seconds"] = full
            entry["ratio_vs_openmined_full_run"] = {k: round(v / full, 4) for k, v in entry["median"].items()}
        out[row] = entry
        print(row, json.dumps(entry), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--micro-n", type=int, default=1 << 13)
    parser.add_argument("--skip-rows", action="store_true")
    parser.add_argument("--openmined", action="store_true", help="also time OpenMined PSI on the balanced row (bench extra)")
    parser.add_argument("--secretflow-python", default=None, help="python of a venv with spu==0.9.5 (measures SecretFlow's balanced PSI)")
    parser.add_argument("--rows", default=",".join(ROWS), help="comma-separated subset of the rows")
    parser.add_argument("--backends", default="libsodium,native", help="comma-separated backends for the rows (native = auto's path)")
    parser.add_argument("--skip-micro", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "native.json")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine_info(), "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    result["auto_backend"] = backend.select("auto").name
    if not args.skip_micro:
        result["micro_ops_per_second"] = micro(args.micro_n, args.repeats)
        print(json.dumps(result["micro_ops_per_second"], indent=1), flush=True)
    if not args.skip_rows:
        result["rows"] = rows(args.repeats, args.openmined, args.secretflow_python, args.rows.split(","), args.backends.split(","))
    result["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
