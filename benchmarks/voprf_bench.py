"""Cost of RFC 9497 VOPRF proofs on a batch (issue 11): proof vs. no proof, each side.

Measures, for one batch of ``--batch`` elements on ``--workers`` threads, the holder's
BlindEvaluate alone vs. BlindEvaluate + batched DLEQ proof, and the requester's
Unblind alone vs. verify + Unblind; best of ``--repeat`` runs. Also the two steps
around them (requester Blind, Finalize's hash), to give the factor of a session's whole
cryptographic pipeline (network, framing and index look-up excluded, which would only
lower it). Writes JSON.

    .venv/bin/python benchmarks/voprf_bench.py --out benchmarks/results/voprf_2e14.json
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from blindmatch.crypto import group, oprf, voprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import VOPRF
from blindmatch.crypto.sodium import sodium_version


def _best_interleaved(repeat: int, steps: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Best time of each step over ``repeat`` rounds, the steps alternating within a round
    so that a shared machine's changing load hits the compared steps alike."""
    best = {name: float("inf") for name in steps}
    for _ in range(repeat):
        for name, run in steps.items():
            start = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def _pipeline(seconds: dict[str, float], *, proven: bool) -> float:
    """Blind, BlindEvaluate(+proof), (verify +) Unblind, Finalize's hash: one session's crypto."""
    evaluate = seconds["holder_blind_evaluate_and_prove" if proven else "holder_blind_evaluate"]
    unblind = seconds["requester_verify_and_unblind" if proven else "requester_unblind"]
    return seconds["requester_blind"] + evaluate + unblind + seconds["requester_finalize_hash"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2**14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    engine = BatchEngine(workers=args.workers)
    sk, pk = voprf.derive_key_pair(bytes(32), b"voprf bench")
    inputs = [f"bench record {i}".encode() for i in range(args.batch)]
    blinds = b"".join(group.random_scalar() for _ in range(args.batch))
    blinded = engine.blind_in_mode(VOPRF, inputs, blinds)
    evaluated, proof = engine.blind_evaluate_proven(sk, pk, blinded)

    def unblind_only() -> bytes:
        return engine.unblind(blinds, evaluated)

    unblinded = unblind_only()

    def finalize_hashes() -> list[bytes]:
        return [oprf.finalize_unblinded(x, unblinded[i * 32 : i * 32 + 32]) for i, x in enumerate(inputs)]

    steps: dict[str, Callable[[], object]] = {
        "requester_blind": lambda: engine.blind_in_mode(VOPRF, inputs, blinds),
        "holder_blind_evaluate": lambda: engine.blind_evaluate(sk, blinded),
        "holder_blind_evaluate_and_prove": lambda: engine.blind_evaluate_proven(sk, pk, blinded),
        "requester_unblind": unblind_only,
        "requester_verify_and_unblind": lambda: engine.verify_and_unblind(pk, blinds, blinded, evaluated, proof),
        "requester_finalize_hash": finalize_hashes,
    }
    seconds = _best_interleaved(args.repeat, steps)
    engine.close()
    result = {
        "batch": args.batch,
        "workers": args.workers,
        "repeat": args.repeat,
        "libsodium": sodium_version(),
        "load_average_after": os.getloadavg()[0],
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
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
