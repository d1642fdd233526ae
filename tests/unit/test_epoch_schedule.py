"""The holder's next boundary: the earlier of its key's epoch end and its index's issuer epoch end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from blindmatch.holder.epoch_schedule import Boundary, next_boundary, prebuild_lead, retry_delay
from blindmatch.holder.store import IndexManifest, IssuerEpochStamp

MONTH_END = datetime(2027, 1, 1, tzinfo=UTC)


def _manifest(valid_from: str, stamp: IssuerEpochStamp | None) -> IndexManifest:
    return IndexManifest(key_id=bytes(32), schema_fingerprint=bytes(32), schema_name="default", schema_version=3,
                         records=1, built_at="2026-12-01T00:00:00Z", files={}, epoch=1, valid_from=valid_from, previous_key_id=None,
                         issuer_epoch=stamp)


STAMP = IssuerEpochStamp("2026-12", datetime(2026, 12, 1, tzinfo=UTC), MONTH_END, bytes(32))


def test_the_earlier_end_is_the_boundary_and_says_what_changes() -> None:
    mid_month = _manifest("2026-12-10T06:00:00Z", STAMP)
    assert next_boundary(mid_month, 1, True) == Boundary(datetime(2026, 12, 11, tzinfo=UTC), True, False)
    assert next_boundary(mid_month, None, True) == Boundary(MONTH_END, False, True)
    assert next_boundary(mid_month, 1, False) == Boundary(datetime(2026, 12, 11, tzinfo=UTC), True, False)
    assert next_boundary(mid_month, None, False) is None
    last_day = _manifest("2026-12-31T06:00:00Z", STAMP)
    assert next_boundary(last_day, 1, True) == Boundary(MONTH_END, True, True)  # both at midnight: one rebuild
    plain = _manifest("2026-12-31T06:00:00Z", None)
    assert next_boundary(plain, None, True) is None  # an index over plain keys has no issuer epoch


def test_leads_and_retry_delays() -> None:
    assert prebuild_lead(None, None) == timedelta(days=1)
    assert prebuild_lead(1, None) == timedelta(hours=6)
    assert prebuild_lead(None, 3) == timedelta(hours=3)
    poll, longest = timedelta(seconds=30), timedelta(minutes=15)
    assert [retry_delay(n, poll, longest).total_seconds() for n in (1, 2, 3, 6, 20)] == [30, 60, 120, 900, 900]
