"""Cross-check ``blindmatch.crypto`` (libsodium via rbcl) against the pure-Python test oracle.

The oracle (``tests/helpers/oracle_ristretto255.py``, test-only) is first validated against the
published vectors of RFC 9496, RFC 9380 and RFC 9497; it is then compared with
blindmatch on seeded random keys and inputs, and with the ``blindmatch oprf evaluate``
command line.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import oracle_ristretto255 as oracle
from helpers import oracle_vectors

from blindmatch.crypto import group, oprf

VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "rfc9497-ristretto255-sha512-oprf.json"
VECTORS = json.loads(VECTORS_PATH.read_text())
REPO_ROOT = Path(__file__).resolve().parents[2]

SEED = 0x9497_9496
N_CASES = 32


def _random_input(rng: random.Random, index: int) -> bytes:
    """Case 0 is the empty input, cases 1-4 are single bytes (incl. 0x00 and 0xff),
    every third case is 200-1000 bytes long, the rest are 2-64 bytes."""
    if index == 0:
        return b""
    if index in (1, 2):
        return bytes([0x00 if index == 1 else 0xFF])
    if index in (3, 4):
        return bytes([rng.randrange(256)])
    if index % 3 == 0:
        return rng.randbytes(rng.randint(200, 1000))
    return rng.randbytes(rng.randint(2, 64))


def _random_scalar(rng: random.Random) -> bytes:
    """A uniformly random non-zero scalar in canonical encoding."""
    return rng.randrange(1, oracle.L).to_bytes(32, "little")


def _cases() -> list[tuple[bytes, bytes, bytes]]:
    """(sk, blind, input) triples, deterministic for a given SEED."""
    rng = random.Random(SEED)
    return [(_random_scalar(rng), _random_scalar(rng), _random_input(rng, i)) for i in range(N_CASES)]


CASES = _cases()


def _case_id(case: tuple[bytes, bytes, bytes]) -> str:
    return f"len{len(case[2])}"


# -- the oracle itself -----------------------------------------------------------------


def test_oracle_self_check() -> None:
    """RFC 9496 A.1/A.2/A.3, RFC 9380 K.2 and group-law consistency."""
    oracle_vectors.self_check()


def test_oracle_context_string_and_key() -> None:
    assert oracle.CONTEXT_STRING.hex() == VECTORS["context_string_hex"]
    sk, pk = oracle.derive_key_pair(bytes.fromhex(VECTORS["seed"]), bytes.fromhex(VECTORS["key_info"]))
    assert sk.hex() == VECTORS["skSm"]
    # pkS = skS * B, computed independently by repeated doubling of the RFC 9496 generator.
    assert pk == oracle.encode(oracle.scalar_mult(int.from_bytes(sk, "little"), oracle.BASE))


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["input"] or "empty")
def test_oracle_rfc9497_vectors(vector: dict[str, str]) -> None:
    """The oracle reproduces RFC 9497 A.1.1 byte for byte (this is what proves it right)."""
    sk = bytes.fromhex(VECTORS["skSm"])
    data = bytes.fromhex(vector["input"])
    r = bytes.fromhex(vector["blind"])
    blinded = oracle.blind(data, r)
    assert blinded.hex() == vector["blinded_element"]
    evaluated = oracle.blind_evaluate(sk, blinded)
    assert evaluated.hex() == vector["evaluation_element"]
    assert oracle.finalize(data, r, evaluated).hex() == vector["output"]
    assert oracle.evaluate(sk, data).hex() == vector["output"]


def test_case_mix_covers_required_lengths() -> None:
    lengths = [len(c[2]) for c in CASES]
    assert 0 in lengths
    assert lengths.count(1) >= 3
    assert sum(200 <= n <= 1000 for n in lengths) >= 5


# -- blindmatch versus the oracle ------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_hash_to_group_matches_oracle(case: tuple[bytes, bytes, bytes]) -> None:
    _, _, data = case
    assert oprf.hash_to_group(data) == oracle.encode(oracle.hash_to_group(data))


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_evaluate_matches_oracle(case: tuple[bytes, bytes, bytes]) -> None:
    sk, _, data = case
    assert oprf.evaluate(sk, data) == oracle.evaluate(sk, data)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_blind_evaluate_finalize_matches_oracle(case: tuple[bytes, bytes, bytes]) -> None:
    sk, r, data = case
    r_out, blinded = oprf.blind(data, r)
    assert r_out == r
    assert blinded == oracle.blind(data, r)
    evaluated = oprf.blind_evaluate(sk, blinded)
    assert evaluated == oracle.blind_evaluate(sk, blinded)
    output = oprf.finalize(data, r, evaluated)
    assert output == oracle.finalize(data, r, evaluated)
    # OPRF correctness: the blinded protocol and the unblinded Evaluate agree.
    assert output == oprf.evaluate(sk, data)


def test_derive_key_pair_matches_oracle() -> None:
    rng = random.Random(SEED + 1)
    infos = [b"", b"\x00", b"test key", rng.randbytes(300)] + [
        rng.randbytes(rng.randint(0, 64)) for _ in range(8)
    ]
    for info in infos:
        seed = rng.randbytes(32)
        sk, pk = oprf.derive_key_pair(seed, info)
        assert (sk, pk) == oracle.derive_key_pair(seed, info), (seed.hex(), info.hex())
        assert oprf.public_key(sk) == pk


def test_public_key_matches_oracle() -> None:
    rng = random.Random(SEED + 2)
    for sk in [(1).to_bytes(32, "little"), (oracle.L - 1).to_bytes(32, "little")] + [
        _random_scalar(rng) for _ in range(6)
    ]:
        expected = oracle.encode(oracle.scalar_mult(int.from_bytes(sk, "little"), oracle.BASE))
        assert oprf.public_key(sk) == expected


def _uniform_edge_halves() -> list[int]:
    """32-byte halves that exercise the one-way map's top-bit mask and mod-p reduction."""
    p = oracle.P
    return [0, 1, p - 1, p, p + 1, 2**255 - 1, 2**255, 2**255 + 1, 2**256 - 1, p + 2**255]


def test_element_from_uniform_edge_cases_match_oracle() -> None:
    """libsodium's from_hash versus RFC 9496 4.3.4 on halves >= p or with bit 255 set."""
    halves = _uniform_edge_halves()
    rng = random.Random(SEED + 3)
    pairs = [(a, b) for a in halves for b in halves[::3]] + [
        (rng.getrandbits(256), rng.getrandbits(256)) for _ in range(10)
    ]
    for a, b in pairs:
        uniform = a.to_bytes(32, "little") + b.to_bytes(32, "little")
        assert group.element_from_uniform(uniform) == oracle.encode(oracle.from_uniform_bytes(uniform)), (
            uniform.hex()
        )


def test_scalar_from_uniform_matches_oracle() -> None:
    rng = random.Random(SEED + 4)
    values = [0, 1, oracle.L - 1, oracle.L, oracle.L + 1, 2**512 - 1, oracle.L * (2**259)]
    values += [rng.getrandbits(512) for _ in range(20)]
    for v in values:
        uniform = v.to_bytes(64, "little")
        assert group.scalar_from_uniform(uniform) == oracle.scalar_reduce(uniform).to_bytes(32, "little")


# -- the command line ------------------------------------------------------------------


def _cli_inputs() -> list[bytes]:
    rng = random.Random(SEED + 5)
    inputs = [b"", b"\x00", bytes([rng.randrange(256)]), rng.randbytes(1000), b""]
    inputs += [rng.randbytes(rng.choice([rng.randint(2, 40), rng.randint(200, 1000)])) for _ in range(15)]
    return inputs


def test_cli_oprf_evaluate_matches_oracle() -> None:
    """``blindmatch oprf evaluate --key-hex HEX``: hex lines in (any case, empty line = empty
    input), RFC 9497 Evaluate outputs out as lowercase hex, one per line, in order."""
    rng = random.Random(SEED + 6)
    sk = _random_scalar(rng)
    inputs = _cli_inputs()
    # Mix lowercase, uppercase and mixed-case hex on stdin.
    lines = []
    for i, data in enumerate(inputs):
        h = data.hex()
        if i % 3 == 1:
            h = h.upper()
        elif i % 3 == 2:
            h = "".join(c.upper() if rng.random() < 0.5 else c for c in h)
        lines.append(h)
    stdin = "\n".join(lines) + "\n"
    result = subprocess.run(
        [sys.executable, "-m", "blindmatch.cli.main", "oprf", "evaluate", "--key-hex", sk.hex()],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    expected = [oracle.evaluate(sk, data).hex() for data in inputs]
    assert result.stdout.splitlines() == expected


@pytest.mark.parametrize(
    "key_hex",
    [oracle.L.to_bytes(32, "little").hex(), bytes(32).hex(), "00"],
    ids=["L", "zero", "short"],
)
def test_cli_oprf_evaluate_rejects_invalid_key(key_hex: str) -> None:
    """A non-canonical, zero or short key is a usage error (exit code 2), reported as one
    ``blindmatch: error:`` line rather than a traceback, and no output is produced."""
    result = subprocess.run(
        [sys.executable, "-m", "blindmatch.cli.main", "oprf", "evaluate", "--key-hex", key_hex],
        input="00\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("blindmatch: error:")
