"""protocol/test-vectors/normalization.json is what the normalisers and the built-in schema produce."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_normalization_vectors_match_implementation() -> None:
    spec = importlib.util.spec_from_file_location("gen", ROOT / "protocol/test-vectors/generate_normalization.py")
    gen = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(gen)  # type: ignore[union-attr]
    stored = json.loads((ROOT / "protocol/test-vectors/normalization.json").read_text("utf-8"))
    assert len(stored["addresses"]) >= 500 and len(stored["names"]) >= 300 and len(stored["tier_keys"]) >= 300
    assert stored == json.loads(json.dumps(gen.build()))
