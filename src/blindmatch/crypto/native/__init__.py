"""Native ristretto255 batch arithmetic (C, built by ``pip install .`` when a compiler exists).

``load()`` returns the compiled module or ``None`` when the optional build was skipped,
or when the built module is older than its sources (an editable install whose C sources
changed without a rebuild lacks the newest entry points); callers then stay on libsodium.
See ``blindmatch.crypto.backend`` for the choice.
"""

from __future__ import annotations

import importlib
from types import ModuleType

_NEWEST = ("add",)  # entry points added after the first build: a module without them predates its sources


def load() -> ModuleType | None:
    """The ``_r255`` extension, or ``None`` when it was not built (or not rebuilt) on this installation."""
    try:
        module = importlib.import_module("blindmatch.crypto.native._r255")
    except ImportError:
        return None
    return module if all(hasattr(module, name) for name in _NEWEST) else None
