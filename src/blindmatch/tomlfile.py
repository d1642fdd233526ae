"""Reading a TOML configuration file, with errors that name the file, and its fields strictly."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
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


_HOST_PORT = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}")


@dataclass(frozen=True)
class StrictFields:
    """The strict field readers of one kind of configuration file.

    Operators write these files by hand, so every mistake raises ``error`` with a message
    that starts with the dotted key it is about (``issuer.tls.cert: missing``), and a key
    the file's format does not know is refused rather than silently ignored (a misspelt
    ``statedir`` would otherwise fall back to a default).
    """

    error: type[Exception]

    def load(self, path: Path, root: str) -> dict[str, Any]:
        """Parse ``path`` and return its one table, ``[root]`` (nothing else may stand beside it)."""
        doc = load_toml(path, self.error, f"{root} config")
        for key in doc:
            if key != root:
                raise self.error(f"{path}: {key}: unknown key (the file holds one [{root}] table)")
        if not isinstance(doc.get(root), dict):
            raise self.error(f"{path}: missing [{root}] table")
        table: dict[str, Any] = doc[root]
        return table

    def check_keys(self, where: str, table: dict[str, Any], allowed: set[str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, where: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(f"{where}: must be a table")
        return value

    def text(self, where: str, table: dict[str, Any], key: str, default: str | None = None) -> str:
        """A non-empty string; NUL is refused too, since no path or name has one."""
        value = table.get(key, default)
        if value is None:
            raise self.error(f"{where}.{key}: missing")
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise self.error(f"{where}.{key}: must be a non-empty string")
        return value

    def integer(self, where: str, table: dict[str, Any], key: str, default: int, minimum: int) -> int:
        value = table.get(key, default)
        if type(value) is not int or value < minimum:  # a TOML boolean is no count
            raise self.error(f"{where}.{key}: must be an integer >= {minimum}")
        return value

    def listen(self, where: str, value: str) -> str:
        """``HOST:PORT`` (an IPv6 host in brackets), the form a daemon's ``listen`` takes."""
        if not _HOST_PORT.fullmatch(value) or int(value.rsplit(":", 1)[1]) > 65535:
            raise self.error(f"{where}: {value!r} is not HOST:PORT")
        return value
