"""Native ristretto255 batch arithmetic (C, built by ``pip install .`` when a compiler exists).

``load()`` returns the compiled module or ``None`` when the optional build was skipped;
callers then stay on libsodium. See ``blindmatch.crypto.backend`` for the choice.
"""

from __future__ import annotations

import importlib
from types import ModuleType


def load() -> ModuleType | None:
    """The ``_r255`` extension, or ``None`` when it was not built on this installation."""
    try:
        return importlib.import_module("blindmatch.crypto.native._r255")
    except ImportError:
        return None
