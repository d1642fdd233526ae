"""Reading a TOML configuration file, with errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


def load_toml(path: Path, error: type[Exception], what: str = "") -> dict[str, Any]:
    """Parse ``path``; unreadable or invalid files raise ``error`` naming the file."""
    label = f"{what} {path}" if what else str(path)
    try:
        with Path(path).open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise error(f"cannot read {label}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{label} is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        # TOML is UTF-8 by definition; the position helps, the bytes themselves are not echoed.
        raise error(f"{label} is not valid TOML: not UTF-8 text (invalid byte at offset {exc.start})") from None
