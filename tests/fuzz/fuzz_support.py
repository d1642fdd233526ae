"""What every fuzz test checks besides "no other exception": a clear error, nothing written."""

from __future__ import annotations

import hashlib
from pathlib import Path

from hypothesis import settings


def assert_clear(error: BaseException, *names: str) -> None:
    """The error says something, and names each of ``names`` (a field, row or file)."""
    text = str(error)
    assert text.strip(), f"{type(error).__name__} with an empty message"
    for name in names:
        assert name in text, f"{type(error).__name__} {text!r} does not name {name!r}"


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file and directory under ``root`` with its mode and content hash."""
    state: dict[str, tuple[int, str]] = {}
    if not root.exists():
        return state
    for path in sorted(root.rglob("*")):
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        state[str(path.relative_to(root))] = (path.stat().st_mode, digest)
    return state


def heavy() -> settings:
    """Settings for a test whose every example writes and re-reads a directory (with fsyncs).

    A fifth of the profile's examples, at least 30: keeps the long run near ten minutes
    while the cheap in-memory parsers get the full count.
    """
    return settings(max_examples=max(30, settings.default.max_examples // 5))
