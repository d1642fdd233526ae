"""Refuse index builds that would quietly stop the holder from matching (issue 17).

A records file with only its header, a truncated export or a file in the wrong format
builds a valid but empty or much smaller index; served, it answers "no match" for
everyone with exit 0. So a build that indexes no row is always refused, and one that
shrinks the committed index, or rejects more rows than the configured share, is refused
unless the operator says ``--allow-shrink``. A refused build keeps the old index.
"""

from __future__ import annotations

from dataclasses import dataclass

from blindmatch.vocabulary import BlindmatchError


class IndexGuardRefusal(BlindmatchError):
    """The new index would replace the committed one with far less; the message says why."""


@dataclass(frozen=True)
class IndexGuard:
    """``[holder.index_guard]`` in holder.toml: shares as fractions (0.05 = 5 %)."""

    max_rejected_share: float = 0.05  # rows rejected over rows read
    max_shrink_share: float = 0.01  # indexed records lost against the committed index


def check_build(guard: IndexGuard, *, rows: int, rejected: int, previous: int | None, allow_shrink: bool) -> None:
    """Raise ``IndexGuardRefusal`` if the build must not replace the committed index.

    ``previous`` is the number of records the committed index holds (None if there is none).
    """
    indexed = rows - rejected
    if indexed == 0:
        why = "the file has no data rows" if rows == 0 else f"all {rows} rows were rejected"
        raise IndexGuardRefusal(f"refusing to build an empty index: {why}; the current index is kept")
    if allow_shrink:
        return
    if rejected > guard.max_rejected_share * rows:
        raise IndexGuardRefusal(
            f"{rejected} of {rows} rows were rejected ({rejected / rows:.1%}), more than "
            f"holder.index_guard.max_rejected_share ({guard.max_rejected_share:.1%}); the current index is kept "
            "(pass --allow-shrink to build it anyway)")
    if previous is not None and indexed < previous * (1 - guard.max_shrink_share):
        raise IndexGuardRefusal(
            f"the new index would hold {indexed} records, {previous - indexed} fewer than the current one "
            f"({previous}), a drop beyond holder.index_guard.max_shrink_share ({guard.max_shrink_share:.1%}); "
            "the current index is kept (pass --allow-shrink to build it anyway)")
