"""protocol/test-vectors/{index,session}.json are exactly what the implementation produces."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from blindmatch.core.index import EncryptedIndex
from blindmatch.crypto import oprf

VECTOR_DIR = Path(__file__).resolve().parents[2] / "protocol" / "test-vectors"
_spec = importlib.util.spec_from_file_location("generate_core", VECTOR_DIR / "generate_core.py")
assert _spec and _spec.loader
generate_core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generate_core)


@pytest.mark.parametrize(("name", "build"), [("index.json", "index_vectors"), ("session.json", "session_vectors")])
def test_vectors_are_current(name: str, build: str) -> None:
    committed = (VECTOR_DIR / name).read_text()
    assert committed == generate_core.render(getattr(generate_core, build)()), f"regenerate {name} with generate_core.py"


def test_index_vector_is_self_consistent() -> None:
    import json

    data = json.loads((VECTOR_DIR / "index.json").read_text())
    sk = bytes.fromhex(data["skS"])
    index = EncryptedIndex.parse(bytes.fromhex(data["indexes"]["membership"]["encoded"]))
    for entry in data["entries"]:
        output = oprf.evaluate(sk, bytes.fromhex(entry["match_key"]))
        assert output.hex() == entry["membership_output"]
        assert index.contains(output).all()
