"""Epochs: the periods an issuer key and its tokens are valid for (monthly by default).

An epoch is named by the UTC month it starts in (``YYYY-MM``) and lasts ``months``
calendar months. The issuer's OPRF key of an epoch is RFC 9497 DeriveKeyPair(seed,
info) with info = ``"blindmatch/v1 issuer epoch " || name``: one secret seed gives every
epoch's key, and no two epochs share a key, so a token of one epoch matches nothing in
an index built for another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from blindmatch.crypto import voprf
from blindmatch.vocabulary import InputError

EPOCH_INFO_PREFIX = b"blindmatch/v1 issuer epoch "
_NAME = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
# The most of an epoch name a peer sent that an error or audit entry quotes back (a name is 7).
EPOCH_TEXT_LIMIT = 32


class EpochError(InputError, ValueError):
    """An epoch name or length is malformed."""


def _month_start(index: int) -> datetime:
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Epoch:
    """One period: its name, first instant (inclusive) and end (exclusive), all UTC."""

    name: str
    not_before: datetime
    expires: datetime

    @classmethod
    def containing(cls, when: datetime, months: int = 1) -> Epoch:
        """The epoch of length ``months`` that contains ``when``; epochs are aligned on year 0."""
        if not 1 <= months <= 12 or 12 % months:
            raise EpochError(f"epoch_months must divide 12 (1, 2, 3, 4, 6 or 12), not {months}")
        when = when.astimezone(UTC)
        start = (when.year * 12 + when.month - 1) // months * months
        first = _month_start(start)
        return cls(first.strftime("%Y-%m"), first, _month_start(start + months))

    @classmethod
    def named(cls, name: str, months: int = 1) -> Epoch:
        """The epoch called ``name``; refused when ``name`` is not the start of an epoch of that length."""
        match = _NAME.match(name)
        if match is None:
            raise EpochError(f"epoch {name!r} is not of the form YYYY-MM")
        epoch = cls.containing(datetime(int(match[1]), int(match[2]), 1, tzinfo=UTC), months)
        if epoch.name != name:
            raise EpochError(f"epoch {name!r} does not start a period of {months} month(s) (it is in {epoch.name})")
        return epoch

    @property
    def info(self) -> bytes:
        return EPOCH_INFO_PREFIX + self.name.encode("ascii")

    def covers(self, when: datetime) -> bool:
        return self.not_before <= when < self.expires


def epoch_key_pair(seed: bytes, epoch: Epoch) -> tuple[bytes, bytes]:
    """``(skS, pkS)`` of the issuer for ``epoch`` (RFC 9497 DeriveKeyPair, VOPRF mode)."""
    return voprf.derive_key_pair(seed, epoch.info)
