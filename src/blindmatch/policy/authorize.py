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

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.policy.budget import BudgetStore, Debit
from blindmatch.policy.errors import PolicyRefusal
from blindmatch.policy.officials import Limits, Official, Policy
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
    cosigners: tuple[Official, ...] = ()
    # The public key that made each of the envelope's signatures, in the envelope's order
    # (the audit log keeps them with the request, so a reviewer can re-verify it).
    signer_keys: tuple[bytes, ...] = ()


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
        # Stands in for another organisation's official when no one has the name, so both
        # cases cost the same verifications (no timing oracle, SPEC 7.5 step 2).
        self._decoy_key = Ed25519PrivateKey.generate().public_key().public_bytes_raw()

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
        request, signatures = open_envelope(envelope)
        official, position = self._signer(request, signatures, peer_organisation)
        if request.organisation != peer_organisation:
            raise PolicyRefusal(
                Reason.WRONG_ORGANISATION,
                f"official {official.name!r} signed for {request.organisation!r}, "
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

        others = signatures[:position] + signatures[position + 1 :]
        cosigner_keys = self._check_dual_control(request, official, others, limits, now)
        signer_keys = (*cosigner_keys[:position], official.public_key, *cosigner_keys[position:])
        cosigners = tuple({o.name: o for o in self._policy.officials(request.organisation)
                           if o.public_key in cosigner_keys and o.name != official.name}.values())

        def audit_then_commit(debit: Debit) -> None:
            if before_commit:
                before_commit(Grant(request=request, official=official, debit=debit, cosigners=cosigners,
                                    signer_keys=signer_keys))

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
        return Grant(request=request, official=official, debit=debit, cosigners=cosigners, signer_keys=signer_keys)

    def _signer(self, request: SessionRequest, signatures: tuple[bytes, ...], peer_organisation: str) -> tuple[Official, int]:
        """The official named by the request, and which of the signatures is theirs.

        No name oracle (SPEC 7.5 step 2): a name that is no official of the peer's
        organisation is ``unknown_official`` whether or not another organisation has an
        official of that name, unless that official's key made a signature (then the
        peer holds their key, and ``wrong_organisation`` states a verified fact). The
        same number of signatures is verified either way (against a decoy key when no one
        has the name), so the time to refuse does not tell the names apart either.
        """
        own = self._policy.find_official(peer_organisation, request.official)
        if own is not None:
            for position, signature in enumerate(signatures):
                if verify_request_signature(request, signature, own.public_key):
                    return own, position
            raise PolicyRefusal(Reason.UNSIGNED, f"no valid signature by the official {request.official!r}")
        # Public keys are unique in a policy, so at most one official verifies.
        candidates: list[tuple[Official | None, bytes]] = [
            (o, o.public_key) for o in self._policy.officials_named(request.official)
        ] or [(None, self._decoy_key)]
        other: Official | None = None
        for candidate, key in candidates:
            # Every signature is checked, with no early exit: the work is the same whichever verifies.
            results = [verify_request_signature(request, sig, key) for sig in signatures]
            if candidate is not None and any(results) and other is None:
                other = candidate
        if other is None:
            raise PolicyRefusal(
                Reason.UNKNOWN_OFFICIAL, f"{request.official!r} is not an official of {peer_organisation!r}"
            )
        raise PolicyRefusal(
            Reason.WRONG_ORGANISATION,
            f"official {other.name!r} signed for {other.organisation!r}, "
            f"but the connection is authenticated as {peer_organisation!r}",
        )

    def _check_dual_control(
        self, request: SessionRequest, official: Official, cosignatures: tuple[bytes, ...], limits: Limits, now: datetime
    ) -> tuple[bytes, ...]:
        """Every co-signature must be by an official of the organisation with a current
        mandate for this mode; a session over the policy's sizes needs enough distinct
        signers. Returns the key that made each co-signature, in order."""
        signers = {official.name}
        keys: list[bytes] = []
        for position, signature in enumerate(cosignatures, start=2):
            cosigner = next(
                (o for o in self._policy.officials(request.organisation)
                 if verify_request_signature(request, signature, o.public_key)),
                None,
            )
            if cosigner is None:
                raise PolicyRefusal(
                    Reason.UNSIGNED, f"co-signature {position - 1} is by no official of {request.organisation!r}"
                )
            if not cosigner.valid_from <= now <= cosigner.valid_until:
                raise PolicyRefusal(Reason.EXPIRED, f"co-signing official {cosigner.name!r} is not authorised at this time")
            if request.mode not in cosigner.modes:
                raise PolicyRefusal(
                    Reason.MODE_NOT_ALLOWED, f"co-signing official {cosigner.name!r} may not use mode {request.mode!r}"
                )
            keys.append(cosigner.public_key)
            signers.add(cosigner.name)
        if limits.dual_control is None:
            return tuple(keys)
        used = self._budgets.remaining(request.organisation, None, limits, now)
        day_used = limits.org_day - used["org_day"]
        needed = limits.dual_control.required(request.record_count, day_used)
        if len(signers) < needed:
            raise PolicyRefusal(
                Reason.DUAL_CONTROL_MISSING,
                f"a session of {request.record_count} records needs the signatures of {needed} distinct officials "
                f"of {request.organisation!r}; it carries {len(signers)}",
            )
        return tuple(keys)

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
