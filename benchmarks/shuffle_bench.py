"""Cost of the verifiable shuffled evaluation of cardinality mode (SPEC 6.1, issue 11).

For each ``--sizes`` entry ``n`` (one session's ``n`` distinct blinded elements, proven
in chunks of ``--chunk``, the holder's default batch size), on ``--workers`` threads:
the holder's unproven evaluation (``t^-1 * B`` for every element, the cost today), its
proven shuffled evaluation, and the requester's verification; best of ``--repeat``
runs, per element, and the proof's size per element. Runs once per ``--backends`` entry;
writes JSON.

    .venv/bin/python benchmarks/shuffle_bench.py --out benchmarks/results/shuffle.json
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from step_timing import best_interleaved, report

from blindmatch.crypto import group
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.shuffle import ShuffleProof
from blindmatch.crypto.sodium import sodium_version


def _size(proof: ShuffleProof) -> int:
    return len(proof.header) + len(proof.records) + len(proof.chunk_proofs)


def measure(backend: str, n: int, chunk: int, workers: int, repeat: int) -> dict[str, object]:
    """One backend's times for one session of ``n`` elements."""
    engine = BatchEngine(workers=workers, backend=backend)
    t = group.random_scalar()
    tweaked, t_inverse = group.base_mult(t), group.invert(t)
    blinded = engine.multiply(b"".join(group.random_scalar() for _ in range(n)), group.base_mult(t) * n)
    outputs, proof = engine.prove_shuffled_evaluation(t, blinded, b"bench ctx", chunk)
    steps: dict[str, Callable[[], object]] = {
        "holder_evaluate_unproven": lambda: engine.blind_evaluate(t_inverse, blinded),
        "holder_prove_shuffled": lambda: engine.prove_shuffled_evaluation(t, blinded, b"bench ctx", chunk),
        "requester_verify": lambda: engine.verify_shuffled_evaluation(tweaked, blinded, outputs, proof, b"bench ctx"),
    }
    seconds = best_interleaved(repeat, steps)
    engine.close()
    return {
        "backend": engine.backend.name,
        "n": n,
        "chunk": chunk,
        "seconds": {name: round(value, 4) for name, value in seconds.items()},
        "microseconds_per_element": {name: round(value / n * 1e6, 2) for name, value in seconds.items()},
        "holder_factor": round(seconds["holder_prove_shuffled"] / seconds["holder_evaluate_unproven"], 2),
        "proof_bytes_per_element": round(_size(proof) / n, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=f"{2**12},{2**14}", help="comma-separated element counts")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backends", default="native", help="comma-separated backend names")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {
        "workers": args.workers,
        "repeat": args.repeat,
        "libsodium": sodium_version(),
        "cpu_count": os.cpu_count(),
        "load_average_before": os.getloadavg()[0],
        "runs": [measure(name, int(n), args.chunk, args.workers, args.repeat)
                 for name in args.backends.split(",") for n in args.sizes.split(",")],
        "load_average_after": os.getloadavg()[0],
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
