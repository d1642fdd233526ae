"""Refusal reasons shared by every policy check.

The policy package must not depend on gRPC (it is a leaf the daemon wires in), so a
refusal carries the gRPC status *name*; the daemon maps it to ``grpc.StatusCode`` and
puts ``reason`` in the status details. SPEC (policy section) justifies each mapping.
"""

from __future__ import annotations

REASONS: tuple[str, ...] = (
    "unsigned",
    "unknown_official",
    "wrong_organisation",
    "expired",
    "replayed",
    "over_budget",
    "mode_not_allowed",
    "too_few_records",
)

STATUS_FOR_REASON: dict[str, str] = {
    # The request's authenticity cannot be established: missing, malformed or bad signature,
    # or a signature that does not cover the data this session carries.
    "unsigned": "UNAUTHENTICATED",
    # The peer is authenticated (mTLS) but the named person holds no authority here.
    "unknown_official": "PERMISSION_DENIED",
    "wrong_organisation": "PERMISSION_DENIED",
    "mode_not_allowed": "PERMISSION_DENIED",
    # Not a transport deadline (DEADLINE_EXCEEDED would invite a blind retry): the request
    # or the official's mandate is outside its validity window and must be re-issued.
    "expired": "FAILED_PRECONDITION",
    # The session itself is well-formed and authorised, but too small for cardinality mode:
    # the same request with more elements would pass, so neither a permission nor a quota.
    "too_few_records": "FAILED_PRECONDITION",
    # The nonce (or session id) is already recorded.
    "replayed": "ALREADY_EXISTS",
    # A quota: gRPC's documented meaning of RESOURCE_EXHAUSTED.
    "over_budget": "RESOURCE_EXHAUSTED",
}


class PolicyRefusal(Exception):
    """The holder refuses a session; nothing may be evaluated for it.

    ``message`` is written to be sent to the peer and logged as is: it names identities,
    fields and counts, never key material or record data.
    """

    def __init__(self, reason: str, message: str) -> None:
        if reason not in STATUS_FOR_REASON:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.status = STATUS_FOR_REASON[reason]
        self.message = message
