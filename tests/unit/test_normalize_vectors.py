"""protocol/test-vectors/normalization.json is what the normalisers and the built-in schema produce."""

import json

from helpers.vector_files import VECTOR_DIR, load_generator


def test_normalization_vectors_match_implementation() -> None:
    gen = load_generator("generate_normalization")
    stored = json.loads((VECTOR_DIR / "normalization.json").read_text("utf-8"))
    assert len(stored["addresses"]) >= 500 and len(stored["names"]) >= 300 and len(stored["tier_keys"]) >= 300
    assert stored == json.loads(json.dumps(gen.build()))
