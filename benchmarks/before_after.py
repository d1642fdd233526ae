"""One change measured against the code before it: two source trees, interleaved, on a shared machine.

    git archive BASE src | tar -x -C /tmp/before && cp src/blindmatch/crypto/native/_r255*.so /tmp/before/src/blindmatch/crypto/native/
    .venv/bin/python benchmarks/before_after.py --before /tmp/before/src --repeats 5 \
        --secretflow-python /tmp/spu_venv/bin/python --out benchmarks/results/native-s4-balanced-ab.json
    .venv/bin/python benchmarks/before_after.py --before /tmp/before/src --micro ifma --repeats 5 --out ...

Each repeat runs the balanced 2^14 x 2^14 row (``blindmatch bench`` harness, total seconds and
CPU seconds of both processes) once in each tree and then once in SecretFlow's ECDH PSI
(``secretflow_psi.py``), so that background load falls on all three alike; ``--micro PATH``
instead times the batch operations of one native arithmetic path, one thread, 2^13 inputs, in
CPU microseconds per operation (median of 7 calls; ``h2g`` is HashToGroup alone, ``finalize``
POPRF Finalize's hash, ``weights`` one composite weight). Medians over the repeats, with the
load average at the start of each. The trees share the interpreter and its packages: copy the
extension built from the older C sources into the older tree to compare C changes.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROW = """
import json, os
os.environ["BLINDMATCH_CRYPTO_BACKEND"] = "auto"
from blindmatch.bench.harness import BenchConfig, run_bench
if __name__ == "__main__":
    r = run_bench(BenchConfig(1 << 14, 1 << 14))
    print(json.dumps({"total": r["total_seconds"], "cpu": r["cpu_seconds"]["total"]}))
"""
MICRO = """
import json, os, statistics, sys, time
import rbcl
from blindmatch.crypto import backend, oprf
from blindmatch.crypto.modes import POPRF
be, n = backend.select("native:" + sys.argv[1]), 1 << 13
messages = [os.urandom(40) for _ in range(n)]
points, _ = be.hash_to_group(messages, oprf.HASH_TO_GROUP_DST, b"")
sk = rbcl.crypto_core_ristretto255_scalar_random()
blinds = b"".join(rbcl.crypto_core_ristretto255_scalar_random() for _ in range(n))
ops = {"mult_one": lambda: be.mult(sk, points), "mult_many": lambda: be.mult(blinds, points),
       "h2g_mult": lambda: be.hash_to_group(messages, oprf.HASH_TO_GROUP_DST, sk),
       "msm": lambda: be.msm(blinds, points), "decode": lambda: be.validate(points),
       "h2g": lambda: be.hash_to_group(messages, oprf.HASH_TO_GROUP_DST, b""),
       "finalize": lambda: be.finalize(messages, points, b"info"),
       "weights": lambda: be.composite_weights(bytes(64), points, points, 0, b"HashToScalar-" + POPRF.context_string)}
out = {}
for name, op in ops.items():
    runs = []
    for _ in range(7):
        t = time.process_time(); op(); runs.append(time.process_time() - t)
    out[name] = statistics.median(runs) / n * 1e6
print(json.dumps(out))
"""


def _in_tree(src: Path, code: str, *args: str) -> dict[str, float]:
    """Run ``code`` with ``src`` first on the path (from a neutral directory); its last line is JSON."""
    script = Path("/tmp") / f"blindmatch-before-after-{os.getpid()}.py"
    script.write_text(code)
    try:
        done = subprocess.run([sys.executable, str(script), *args], env=dict(os.environ, PYTHONPATH=str(src)),
                              cwd="/tmp", capture_output=True, text=True, check=True)
    finally:
        script.unlink(missing_ok=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _secretflow(python: str) -> dict[str, float]:
    done = subprocess.run([python, str(HERE / "secretflow_psi.py"), "--n", "16384", "--m", "16384", "--repeats", "1"],
                          capture_output=True, text=True, check=True)
    report = json.loads(next(line for line in reversed(done.stdout.splitlines()) if line.startswith('{"spu"')))
    return {"total": report["PROTOCOL_ECDH"]["median_seconds"], "cpu": report["PROTOCOL_ECDH"]["median_cpu_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, required=True, help="the older tree's src directory")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--micro", default=None, help="time one native path's operations instead of the balanced row")
    parser.add_argument("--secretflow-python", default=None, help="python of a venv with spu==0.9.5")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    trees = {"before": args.before, "after": HERE.parent / "src"}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in [*trees, *(["secretflow_ecdh"] if args.secretflow_python else [])]}
    loads = []
    for _ in range(args.repeats):
        loads.append(os.getloadavg()[0])
        for name, src in trees.items():
            runs[name].append(_in_tree(src, MICRO, args.micro) if args.micro else _in_tree(src, ROW))
        if args.secretflow_python and not args.micro:
            runs["secretflow_ecdh"].append(_secretflow(args.secretflow_python))
        print({name: r[-1] for name, r in runs.items()}, flush=True)
    median = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    result: dict[str, Any] = {"what": f"native:{args.micro} CPU us per operation" if args.micro else "balanced 2^14 x 2^14",
                              "median": median, "load_avg_1min": loads, "runs": runs}
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
