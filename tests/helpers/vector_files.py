"""The committed test vectors and their generator scripts, for the tests that keep them current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

VECTOR_DIR = Path(__file__).resolve().parents[2] / "protocol" / "test-vectors"


def load_generator(name: str) -> ModuleType:
    """``protocol/test-vectors/NAME.py`` as a module: the scripts are not a package, so load them by path."""
    spec = importlib.util.spec_from_file_location(name, VECTOR_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
