"""Cost of RFC 9497 VOPRF proofs on a batch (issue 11): proof vs. no proof, each side.

Measures, for one batch of ``--batch`` elements on ``--workers`` threads, the holder's
BlindEvaluate alone vs. BlindEvaluate + batched DLEQ proof, and the requester's
Unblind alone vs. verify + Unblind; best of ``--repeat`` runs. Also the two steps
around them (requester Blind, Finalize's hash), to give the factor of a session's whole
cryptographic pipeline (network, framing and index look-up excluded, which would only
lower it). Runs once per ``--backends`` entry (libsodium, with one rbcl multiplication
per composite term, and native, with the C multi-scalar multiplication); writes JSON.

    .venv/bin/python benchmarks/voprf_bench.py --out benchmarks/results/voprf_2e14.json
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path

from step_timing import best_interleaved, report

from blindmatch.crypto import backend as backends
from blindmatch.crypto import group, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import VOPRF
from blindmatch.crypto.sodium import sodium_version


def _pipeline(seconds: dict[str, float], *, proven: bool) -> float:
    """Blind, BlindEvaluate(+proof), (verify +) Unblind, Finalize's hash: one session's crypto."""
    evaluate = seconds["holder_blind_evaluate_and_prove" if proven else "holder_blind_evaluate"]
    unblind = seconds["requester_verify_and_unblind" if proven else "requester_unblind"]
    return seconds["requester_blind"] + evaluate + unblind + seconds["requester_finalize_hash"]


def measure(backend: str, batch: int, workers: int, repeat: int) -> dict[str, object]:
    """One backend's step times and proof factors for one batch."""
    engine = BatchEngine(workers=workers, backend=backend)
    sk, pk = voprf.derive_key_pair(bytes(32), b"voprf bench")
    inputs = [f"bench record {i}".encode() for i in range(batch)]
    blinds = b"".join(group.random_scalar() for _ in range(batch))
    blinded = engine.blind_in_mode(VOPRF, inputs, blinds)
    evaluated, proof = engine.blind_evaluate_proven(sk, pk, blinded)
    unblinded = engine.unblind(blinds, evaluated)
    steps: dict[str, Callable[[], object]] = {
        "requester_blind": lambda: engine.blind_in_mode(VOPRF, inputs, blinds),
        "holder_blind_evaluate": lambda: engine.blind_evaluate(sk, blinded),
        "holder_blind_evaluate_and_prove": lambda: engine.blind_evaluate_proven(sk, pk, blinded),
        "requester_unblind": lambda: engine.unblind(blinds, evaluated),
        "requester_verify_and_unblind": lambda: engine.verify_and_unblind(pk, blinds, blinded, evaluated, proof),
        "requester_finalize_hash": lambda: backends.finalize_many(inputs, unblinded, backend),
    }
    seconds = best_interleaved(repeat, steps)
    engine.close()
    return {
        "backend": engine.backend.name,
        "seconds": {name: round(value, 4) for name, value in seconds.items()},
        "holder_factor": round(seconds["holder_blind_evaluate_and_prove"] / seconds["holder_blind_evaluate"], 3),
        "requester_factor": round(seconds["requester_verify_and_unblind"] / seconds["requester_unblind"], 3),
        "pipeline_factor": round(_pipeline(seconds, proven=True) / _pipeline(seconds, proven=False), 3),
        "crypto_factor_both_sides": round(
            (seconds["holder_blind_evaluate_and_prove"] + seconds["requester_verify_and_unblind"])
            / (seconds["holder_blind_evaluate"] + seconds["requester_unblind"]),
            3,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2**14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--backends", default="libsodium,native", help="comma-separated backend names")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    result = {
        "batch": args.batch,
        "workers": args.workers,
        "repeat": args.repeat,
        "libsodium": sodium_version(),
        "load_average_before": os.getloadavg()[0],
        "runs": {name: measure(name, args.batch, args.workers, args.repeat) for name in args.backends.split(",")},
        "load_average_after": os.getloadavg()[0],
    }
    report(result, args.out)


if __name__ == "__main__":
    main()
