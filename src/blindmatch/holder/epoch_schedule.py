"""When the holder's daemon next rebuilds its index by itself, and what changes then.

Two schedules end what the holder serves: its own key's epochs (``holder.epoch_days``,
``core.key_epochs``) and, for an index over eligibility tokens, the issuer's epoch the
tokens are of (the manifest's ``issuer_epoch``, ending at its ``expires``). The next
boundary is the earlier of the two ends. A rebuild at it rotates the holder's key only if
the key's epoch ends there, and takes the issuer epoch that begins there only if the
issuer's ends there; when both end at the same instant (daily key epochs meet every
monthly issuer epoch at midnight UTC) one rebuild does both. Ends that are close but
not equal are separate rebuilds: a key made early would live only until the same
period boundary, so merging them would not save the second one.

Pure functions of the manifest and the configuration: the daemon passes its clock in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from blindmatch.core.key_epochs import default_prebuild_lead, epoch_ends_at
from blindmatch.core.rotation import parse_time
from blindmatch.holder.store import IndexManifest

# Without an epoch_days schedule, the index for a new issuer epoch is built this long ahead.
DEFAULT_ISSUER_LEAD = timedelta(days=1)


@dataclass(frozen=True)
class Boundary:
    """The next instant the served index must be replaced, and why."""

    at: datetime
    rotates_key: bool  # the holder key's epoch ends here
    issuer_epoch_ends: bool  # the issuer epoch of the index's tokens ends here


def next_boundary(manifest: IndexManifest, epoch_days: int | None, follows_issuer: bool) -> Boundary | None:
    """The next boundary of what ``manifest`` describes, or None when nothing ends by schedule.

    ``follows_issuer``: the daemon refreshes the index for new issuer epochs (``[holder.issuer]``).
    """
    key_end = epoch_ends_at(parse_time(manifest.valid_from), epoch_days) if epoch_days else None
    stamp = manifest.issuer_epoch if follows_issuer else None
    issuer_end = stamp.expires if stamp is not None else None
    ends = [end for end in (key_end, issuer_end) if end is not None]
    if not ends:
        return None
    at = min(ends)
    return Boundary(at, key_end == at, issuer_end == at)


def prebuild_lead(epoch_days: int | None, lead_hours: int | None) -> timedelta:
    """How long before a boundary its indexes are built: ``epoch_lead_hours``, else the key schedule's
    default (a day, or a quarter of shorter epochs), else a day before an issuer epoch ends."""
    if lead_hours is not None:
        return timedelta(hours=lead_hours)
    return default_prebuild_lead(epoch_days) if epoch_days else DEFAULT_ISSUER_LEAD


def retry_delay(failures: int, poll: timedelta, longest: timedelta) -> timedelta:
    """The wait before the next try after ``failures`` failed ones in a row: doubling from ``poll``, at most ``longest``."""
    return min(poll * (1 << max(failures - 1, 0)), longest)
