"""What every fuzz test checks besides "no other exception": a clear error, nothing written."""

from __future__ import annotations

import hashlib
from pathlib import Path


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
