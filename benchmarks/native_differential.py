"""Long differential run: the native ristretto255 backend against libsodium (rbcl), by hand.

    .venv/bin/python benchmarks/native_differential.py --count 1000000      # ~1M cases per operation

For every arithmetic path this CPU runs (``portable``, ``avx2``, ``ifma``; ``--paths`` picks some) and every chunk of random
inputs it checks, byte for byte against rbcl:

* ``from_uniform``: RFC 9496 element derivation of random 64-byte strings (these elements
  then feed the multiplications, so no separate point generation is needed);
* ``mult_one``: one random scalar times many elements (BlindEvaluate, index build);
* ``mult_many``: one random 32-byte string (unreduced, top bit random) per element;
* ``decode``: random 32-byte strings, the valid elements above, and non-canonical ones
  (s + p), judged by ``validate`` against rbcl's is_valid_point plus the top-bit rule;
* ``hash_to_group``: RFC 9497 HashToGroup of random messages, times a random scalar;
* ``invert``: batched inversion modulo L.

The suite (tests/test_crypto_native_diff.py) runs a few thousand such cases; this script
is the long version. It prints one JSON line with the counts checked and exits non-zero
on the first mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time

import rbcl

from blindmatch.crypto import backend, oprf
from blindmatch.crypto.h2c import expand_message_xmd_sha512
from blindmatch.crypto.native import load

P = 2**255 - 19


def _ref_mult(scalars: bytes, points: bytes) -> list[bytes | None]:
    step = 0 if len(scalars) == 32 else 32
    out: list[bytes | None] = []
    for i in range(0, len(points), 32):
        try:
            out.append(bytes(rbcl.crypto_scalarmult_ristretto255(scalars[i // 32 * step : i // 32 * step + 32], points[i : i + 32])))
        except RuntimeError:
            out.append(None)
    return out


def _check_mult(r255: object, path: str, scalars: bytes, points: bytes, expected: list[bytes | None]) -> None:
    out, bad = r255.mult(path, scalars, points)  # type: ignore[attr-defined]
    first_bad = next((i for i, e in enumerate(expected) if e is None), -1)
    if bad != first_bad or (first_bad < 0 and out != b"".join(e or b"" for e in expected)):
        sys.exit(f"{path}: mult mismatch (bad {bad} vs {first_bad})")


def _accepts(e: bytes) -> bool:
    return not e[31] & 0x80 and any(e) and bool(rbcl.crypto_core_ristretto255_is_valid_point(e))


def run_chunk(r255: object, paths: tuple[str, ...], chunk: int, r: random.Random, counts: dict[str, int]) -> None:
    uniform = os.urandom(64 * chunk)
    points = b"".join(rbcl.crypto_core_ristretto255_from_hash(uniform[i : i + 64]) for i in range(0, len(uniform), 64))
    sk = rbcl.crypto_core_ristretto255_scalar_random()
    many = os.urandom(32 * chunk)
    ref_one, ref_many = _ref_mult(sk, points), _ref_mult(many, points)
    encodings = [r.randbytes(32) for _ in range(chunk)] + [(r.randrange(19) + P).to_bytes(32, "little") for _ in range(16)]
    verdicts = [_accepts(e) for e in encodings]
    messages = [r.randbytes(r.randrange(0, 120)) for _ in range(chunk // 4)]
    data, offsets = backend.pack_messages(messages)
    ref_h2g = b"".join(
        rbcl.crypto_scalarmult_ristretto255(sk, rbcl.crypto_core_ristretto255_from_hash(expand_message_xmd_sha512(m, oprf.HASH_TO_GROUP_DST, 64)))
        for m in messages
    )
    scalars = b"".join(rbcl.crypto_core_ristretto255_scalar_random() for _ in range(chunk // 4))
    ref_inv = b"".join(rbcl.crypto_core_ristretto255_scalar_invert(scalars[i : i + 32]) for i in range(0, len(scalars), 32))
    for path in paths:
        if r255.from_uniform(path, uniform) != (points, -1):  # type: ignore[attr-defined]
            sys.exit(f"{path}: from_uniform mismatch")
        _check_mult(r255, path, sk, points, ref_one)
        _check_mult(r255, path, many, points, ref_many)
        for e, ok in zip(encodings + [points[i : i + 32] for i in range(0, 32 * 64, 32)], verdicts + [True] * 64, strict=True):
            if (r255.validate(path, e, True) == -1) != ok:  # type: ignore[attr-defined]
                sys.exit(f"{path}: decode verdict mismatch on {e.hex()}")
        if r255.hash_to_group(path, data, offsets, oprf.HASH_TO_GROUP_DST, sk) != (ref_h2g, -1):  # type: ignore[attr-defined]
            sys.exit(f"{path}: hash_to_group mismatch")
        counts[f"{path}.from_uniform"] += chunk
        counts[f"{path}.mult_one"] += chunk
        counts[f"{path}.mult_many"] += chunk
        counts[f"{path}.decode"] += len(encodings) + 64
        counts[f"{path}.hash_to_group"] += len(messages)
    if r255.scalar_invert(scalars) != ref_inv:  # type: ignore[attr-defined]
        sys.exit("scalar_invert mismatch")
    counts["invert"] += len(scalars) // 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="cases per operation and path (rounded up to chunks)")
    parser.add_argument("--chunk", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--paths", default="", help="comma-separated paths to check (default: every path this CPU runs)")
    args = parser.parse_args()
    r255 = load()
    if r255 is None:
        sys.exit("the native extension is not built")
    paths = tuple(r255.paths())
    if args.paths:
        wanted = tuple(p.strip() for p in args.paths.split(","))
        missing = [p for p in wanted if p not in paths]
        if missing:
            sys.exit(f"paths {missing} are not available on this CPU (has {paths})")
        paths = wanted
    counts: dict[str, int] = {f"{p}.{op}": 0 for p in paths for op in ("from_uniform", "mult_one", "mult_many", "decode", "hash_to_group")}
    counts["invert"] = 0
    r = random.Random(args.seed)
    start = time.time()
    while counts[f"{paths[0]}.mult_one"] < args.count:
        run_chunk(r255, paths, args.chunk, r, counts)
    print(json.dumps({"paths": paths, "counts": counts, "mismatches": 0, "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
