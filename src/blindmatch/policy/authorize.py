"""The holder's decision whether a Match session may run.

Checks run in a fixed, documented order (SPEC, "Authorisation") so that each
refusal reason means one thing, and the budget (the only check with a side effect)
comes last: a session refused for any reason debits nothing, and a granted session
has been debited before any evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from blindmatch.policy.budget import BudgetStore, Debit
from blindmatch.policy.errors import PolicyRefusal
from blindmatch.policy.officials import Official, Policy
from blindmatch.policy.request import SessionRequest, open_envelope, verify_request_signature
from blindmatch.vocabulary import Reason

CLOCK_SKEW = timedelta(minutes=5)
MAX_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True)
class Grant:
    """Permission for one session: the signed request, who signed it, and the debit."""

    request: SessionRequest
    official: Official
    debit: Debit


class Authorizer:
    """Applies the policy file and the budget store to signed session requests."""

    def __init__(
        self,
        policy: Policy,
        budgets: BudgetStore,
        *,
        clock_skew: timedelta = CLOCK_SKEW,
        max_lifetime: timedelta = MAX_LIFETIME,
    ) -> None:
        self._policy = policy
        self._budgets = budgets
        self._skew = clock_skew
        self._max_lifetime = max_lifetime

    def authorize(
        self,
        envelope: bytes,
        *,
        peer_organisation: str,
        session_id: bytes,
        key_id: bytes,
        index_digest: bytes,
        blinded_commitment: bytes,
        record_count: int,
        mode: str,
        now: datetime,
        before_commit: Callable[[Grant], None] | None = None,
    ) -> Grant:
        """Grant the session or raise PolicyRefusal. ``peer_organisation`` is the mTLS identity;
        the other keywords are what this session carries. ``before_commit`` gets the grant before
        its debit commits (the holder audits it there); if it raises, nothing is debited."""
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("now must be a timezone-aware datetime")
        request, signature = open_envelope(envelope)

        # Names are looked up across all organisations so that a genuine official of
        # another organisation is reported as such (wrong_organisation), not as unknown.
        candidates = self._policy.officials_named(request.official)
        if not candidates:
            raise PolicyRefusal(Reason.UNKNOWN_OFFICIAL, f"{request.official!r} is not a registered official")
        # Public keys are unique in a policy, so at most one candidate verifies.
        official = next((o for o in candidates if verify_request_signature(request, signature, o.public_key)), None)
        if official is None:
            raise PolicyRefusal(Reason.UNSIGNED, f"no valid signature by an official named {request.official!r}")

        for claimed in (official.organisation, request.organisation):
            if claimed != peer_organisation:
                raise PolicyRefusal(
                    Reason.WRONG_ORGANISATION,
                    f"official {official.name!r} signed for {claimed!r}, "
                    f"but the connection is authenticated as {peer_organisation!r}",
                )

        self._check_times(request, official, now)

        carried = {
            "session_id": session_id,
            "key_id": key_id,
            "index_digest": index_digest,
            "blinded_commitment": blinded_commitment,
            "record_count": record_count,
            "mode": mode,
        }
        for field, value in carried.items():
            if getattr(request, field) != value:
                raise PolicyRefusal(Reason.UNSIGNED, f"the signed request does not cover this session ({field} differs)")

        if request.mode not in official.modes:
            raise PolicyRefusal(Reason.MODE_NOT_ALLOWED, f"official {official.name!r} may not use mode {request.mode!r}")

        limits = self._policy.limits(request.organisation, official.name)
        # A count over a handful of elements is close to per-record membership (SPEC section 6).
        if request.mode == "cardinality" and request.record_count < limits.cardinality_min_records:
            raise PolicyRefusal(
                Reason.TOO_FEW_RECORDS,
                f"a cardinality session needs at least {limits.cardinality_min_records} elements; "
                f"this one has {request.record_count}",
            )

        def audit_then_commit(debit: Debit) -> None:
            if before_commit:
                before_commit(Grant(request=request, official=official, debit=debit))
        debit = self._budgets.reserve(
            session_id=request.session_id,
            organisation=request.organisation,
            official=official.name,
            nonce=request.nonce,
            records=request.record_count,
            limits=limits,
            now=now,
            before_commit=audit_then_commit,
        )
        return Grant(request=request, official=official, debit=debit)

    def _check_times(self, request: SessionRequest, official: Official, now: datetime) -> None:
        # The mandate is a legal fact: no skew allowance on the official's validity.
        if not official.valid_from <= now <= official.valid_until:
            raise PolicyRefusal(Reason.EXPIRED, f"official {official.name!r} is not authorised at this time")
        if request.expires_at <= request.issued_at:
            raise PolicyRefusal(Reason.EXPIRED, "the request expires before it is issued")
        if request.expires_at - request.issued_at > self._max_lifetime:
            raise PolicyRefusal(
                Reason.EXPIRED, f"the request's lifetime exceeds {int(self._max_lifetime.total_seconds())} s"
            )
        if request.issued_at > now + self._skew:
            ahead = int((request.issued_at - now).total_seconds())
            raise PolicyRefusal(
                Reason.EXPIRED,
                f"the request is not yet valid: it was issued {ahead} s after the holder's current time, so the "
                f"requester's clock is {ahead} s ahead of the holder's (at most {int(self._skew.total_seconds())} s "
                "are allowed); correct the requester's clock (NTP)",
            )
        if now > request.expires_at + self._skew:
            late, age = int((now - request.expires_at).total_seconds()), int((now - request.issued_at).total_seconds())
            raise PolicyRefusal(
                Reason.EXPIRED,
                f"the request expired {late} s ago by the holder's clock; it was issued {age} s before the "
                f"holder's current time (if it was signed just now, the requester's clock is {age} s behind the holder's)",
            )
