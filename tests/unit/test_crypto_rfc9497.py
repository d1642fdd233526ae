"""RFC 9497 Appendix A.1.1 vectors (ristretto255-SHA512, OPRF mode), byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blindmatch.crypto import oprf
from blindmatch.crypto.h2c import expand_message_xmd_sha512

VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "rfc9497-ristretto255-sha512-oprf.json"
VECTORS = json.loads(VECTORS_PATH.read_text())


def test_context_string_matches_rfc() -> None:
    assert oprf.CONTEXT_STRING.hex() == VECTORS["context_string_hex"]


def test_derive_key_pair() -> None:
    sk, _ = oprf.derive_key_pair(bytes.fromhex(VECTORS["seed"]), bytes.fromhex(VECTORS["key_info"]))
    assert sk.hex() == VECTORS["skSm"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["input"] or "empty")
def test_protocol_vector(vector: dict[str, str]) -> None:
    sk = bytes.fromhex(VECTORS["skSm"])
    data = bytes.fromhex(vector["input"])
    r, blinded = oprf.blind(data, bytes.fromhex(vector["blind"]))
    assert blinded.hex() == vector["blinded_element"]
    evaluated = oprf.blind_evaluate(sk, blinded)
    assert evaluated.hex() == vector["evaluation_element"]
    assert oprf.finalize(data, r, evaluated).hex() == vector["output"]
    assert oprf.evaluate(sk, data).hex() == vector["output"]


# RFC 9380 Appendix K.2 (expand_message_xmd, SHA-512), len_in_bytes = 0x20.
XMD_DST = b"QUUX-V01-CS02-with-expander-SHA512-256"


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (b"", "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"),
        (b"abc", "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"),
    ],
)
def test_expand_message_xmd_rfc9380_vectors(msg: bytes, expected: str) -> None:
    assert expand_message_xmd_sha512(msg, XMD_DST, 0x20).hex() == expected


def test_batch_invert_matches_single_inversions() -> None:
    from blindmatch.crypto import group

    scalars = [group.random_scalar() for _ in range(33)]
    joined = group.batch_invert(b"".join(scalars))
    assert [joined[i * 32 : (i + 1) * 32] for i in range(33)] == [group.invert(s) for s in scalars]
    assert group.batch_invert(b"") == b""
    with pytest.raises(group.InvalidScalarError):
        group.batch_invert(scalars[0] + bytes(32))
