"""Backend choice and the BatchEngine on each backend: same bytes, same errors, libsodium fallback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.native_support import PATHS, random_elements, random_messages, random_scalars, rng

from blindmatch.crypto import backend, group, oprf
from blindmatch.crypto.batch import BatchEngine

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "rfc9497-ristretto255-sha512-oprf.json").read_text())
BACKENDS = ["libsodium", *(f"native:{p}" for p in PATHS)]


@pytest.fixture(params=BACKENDS)
def engine(request: pytest.FixtureRequest) -> BatchEngine:
    return BatchEngine(workers=2, backend=request.param)


def test_rfc9497_vectors_through_the_engine(engine: BatchEngine) -> None:
    sk = bytes.fromhex(VECTORS["skSm"])
    inputs = [bytes.fromhex(v["input"]) for v in VECTORS["vectors"]]
    blinds = b"".join(bytes.fromhex(v["blind"]) for v in VECTORS["vectors"])
    blinded = engine.blind(inputs, blinds)
    assert blinded.hex() == "".join(v["blinded_element"] for v in VECTORS["vectors"])
    evaluated = engine.blind_evaluate(sk, blinded)
    assert evaluated.hex() == "".join(v["evaluation_element"] for v in VECTORS["vectors"])
    unblinded = engine.unblind(blinds, evaluated)
    outputs = [oprf.finalize_unblinded(x, unblinded[32 * i : 32 * i + 32]) for i, x in enumerate(inputs)]
    assert [o.hex() for o in outputs] == [v["output"] for v in VECTORS["vectors"]]
    direct = engine.evaluate_elements(sk, inputs)
    assert [oprf.finalize_unblinded(x, direct[32 * i : 32 * i + 32]).hex() for i, x in enumerate(inputs)] == [
        v["output"] for v in VECTORS["vectors"]
    ]


def test_every_backend_gives_the_same_bytes(engine: BatchEngine) -> None:
    """Batches large enough to be split over the thread pool (and ragged for the IFMA lanes)."""
    reference = BatchEngine(workers=1, backend="libsodium")
    sk = random_scalars(1)
    inputs = random_messages(rng(7), 1029)
    blinds = random_scalars(len(inputs))
    blinded = engine.blind(inputs, blinds)
    assert blinded == reference.blind(inputs, blinds)
    evaluated = engine.blind_evaluate(sk, blinded)
    assert evaluated == reference.blind_evaluate(sk, blinded)
    assert engine.unblind(blinds, evaluated) == reference.unblind(blinds, evaluated)
    assert engine.evaluate_elements(sk, inputs) == reference.evaluate_elements(sk, inputs)


def test_invalid_elements_are_named_by_index(engine: BatchEngine) -> None:
    sk = random_scalars(1)
    elements = bytearray(random_elements(700))
    elements[32 * 613 : 32 * 614] = (2**255 - 19 + 3).to_bytes(32, "little")  # non-canonical
    with pytest.raises(group.InvalidElementError, match="element 613 "):
        engine.blind_evaluate(sk, bytes(elements))
    elements[32 * 613 : 32 * 614] = bytes(32)  # identity
    with pytest.raises(group.InvalidElementError, match="element 613 "):
        engine.unblind(random_scalars(700), bytes(elements))


def test_environment_variable_and_argument_choose(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(backend.BACKEND_ENV, "libsodium")
    assert BatchEngine(workers=1).backend.name == "libsodium"
    for path in PATHS:
        assert BatchEngine(workers=1, backend=f"native:{path}").backend.name == f"native:{path}"
        monkeypatch.setenv(backend.BACKEND_ENV, "native")
        monkeypatch.setenv(backend.NATIVE_PATH_ENV, path)
        assert BatchEngine(workers=1).backend.name == f"native:{path}"
    with pytest.raises(backend.BackendUnavailableError, match="unknown crypto backend"):
        backend.select("openssl")


def test_auto_prefers_ifma_then_avx2_and_otherwise_libsodium(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = "native:ifma" if "ifma" in PATHS else "native:avx2" if "avx2" in PATHS else "libsodium"
    assert backend.select("auto").name == expected
    if "avx2" in PATHS:  # what a CPU with AVX2 but without IFMA sees
        monkeypatch.setattr(backend, "native_paths", lambda: ("portable", "avx2"))
        backend._resolve.cache_clear()
        try:
            assert backend.select("auto").name == "native:avx2"
        finally:
            backend._resolve.cache_clear()


def test_missing_extension_falls_back_to_libsodium(monkeypatch: pytest.MonkeyPatch) -> None:
    """What an install without a C compiler sees: auto runs libsodium, native says why it cannot."""
    monkeypatch.setattr(backend, "load_native", lambda: None)
    backend._resolve.cache_clear()
    try:
        assert backend.native_paths() == ()
        assert backend.select("auto").name == "libsodium"
        with pytest.raises(backend.BackendUnavailableError, match="not built"):
            backend.select("native:portable")
    finally:
        backend._resolve.cache_clear()


def test_a_build_older_than_its_sources_counts_as_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """An editable install whose C sources gained an entry point without a rebuild stays on libsodium."""
    import importlib
    import types

    from blindmatch.crypto import native

    stale = types.ModuleType("_r255")
    monkeypatch.setattr(importlib, "import_module", lambda name: stale)
    assert native.load() is None
    monkeypatch.setattr(stale, "add", lambda *args: None, raising=False)
    assert native.load() is stale


def test_finalize_many_matches_the_rfc_hash() -> None:
    """The batched Finalize hash (C on the native backend) equals oprf.finalize_unblinded byte for byte."""
    inputs = [*random_messages(rng(11), 300), b"", b"\x00" * 65535]
    elements = random_elements(len(inputs))
    expected = b"".join(oprf.finalize_unblinded(x, elements[32 * i : 32 * i + 32]) for i, x in enumerate(inputs))
    for name in BACKENDS:
        assert backend.finalize_many(inputs, elements, name) == expected
        with pytest.raises(oprf.InvalidInputError, match="input 1 longer"):
            backend.finalize_many([b"a", b"\x00" * 65536], elements[:64], name)


def test_poprf_finalize_many_matches_the_rfc_hash() -> None:
    """With ``info`` (POPRF), the batched hash equals poprf.finalize_unblinded, RFC 9497 vectors included."""
    from blindmatch.crypto import poprf

    inputs = [*random_messages(rng(12), 300), b"", b"\x00" * 65535]
    elements = random_elements(len(inputs))
    for info in (b"", b"test info", b"\xff" * 65535):
        expected = b"".join(poprf.finalize_unblinded(x, info, elements[32 * i : 32 * i + 32]) for i, x in enumerate(inputs))
        for name in BACKENDS:
            assert backend.finalize_many(inputs, elements, name, info=info) == expected
    vectors = json.loads((Path(__file__).parent.parent / "data" / "rfc9497-ristretto255-sha512-poprf.json").read_text())
    for v in vectors["vectors"]:  # the batch vector's fields are comma-separated lists
        fields = zip(v["Input"].split(","), v["Blind"].split(","), v["EvaluationElement"].split(","), strict=True)
        pairs = [(bytes.fromhex(x), oprf.unblind(bytes.fromhex(b), bytes.fromhex(e))) for x, b, e in fields]
        for name in BACKENDS:
            out = backend.finalize_many([x for x, _ in pairs], b"".join(u for _, u in pairs), name, info=bytes.fromhex(v["Info"]))
            assert out.hex() == v["Output"].replace(",", "")
    for name in BACKENDS:
        with pytest.raises(oprf.InvalidInputError, match="longer"):
            backend.finalize_many([b"a"], elements[:32], name, info=b"\x00" * 65536)


def test_random_scalars_are_canonical_nonzero_and_fresh() -> None:
    for name in BACKENDS:
        scalars = backend.random_scalars(2000, name)
        assert len(scalars) == 64000
        chunks = [scalars[i : i + 32] for i in range(0, len(scalars), 32)]
        assert len(set(chunks)) == 2000
        for s in chunks:
            assert group.decode_scalar(s) == s and any(s)  # canonical (< L) and non-zero
        # uniform mod L ~ 2^252: the top byte takes each of 0..15 (16 needs a value >= 2^252, p ~ 2^-125)
        assert {s[31] for s in chunks} == set(range(16))
