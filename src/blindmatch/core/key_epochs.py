"""The holder key's epoch schedule (``epoch_days``): when a key's epoch ends, as a pure function of time.

Epochs are periods of ``epoch_days`` days aligned on 1970-01-01T00:00:00Z (Unix time 0),
so every implementation computes the same boundaries from the same configuration with
no state. A key serves from its validity start to the first boundary after it: a key
made in the middle of a period (the first one, or a manual rotation) lives until that
period ends. The daemon passes its clock in; nothing here reads one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

SECONDS_PER_DAY = 86_400


def epoch_ends_at(valid_from: datetime, epoch_days: int) -> datetime:
    """The first period boundary after ``valid_from`` (periods of ``epoch_days`` days from Unix time 0)."""
    if epoch_days < 1:
        raise ValueError(f"epoch_days must be at least 1, not {epoch_days}")
    length = epoch_days * SECONDS_PER_DAY
    start = int(valid_from.timestamp())
    return datetime.fromtimestamp((start // length + 1) * length, UTC)


def epoch_ended(valid_from: datetime, epoch_days: int, now: datetime) -> bool:
    """Whether the key valid from ``valid_from`` has reached the end of its epoch at ``now``."""
    return now >= epoch_ends_at(valid_from, epoch_days)


def default_prebuild_lead(epoch_days: int) -> timedelta:
    """How long before its epoch's end the next key and indexes are built: a day, or a quarter of shorter epochs."""
    return min(timedelta(days=1), timedelta(days=epoch_days) / 4)


def prebuild_starts_at(valid_from: datetime, epoch_days: int, lead: timedelta) -> datetime:
    """When the build of the epoch after the key valid from ``valid_from`` starts (``lead`` before its end)."""
    return epoch_ends_at(valid_from, epoch_days) - lead
