"""The exception every policy check raises to refuse a session.

The policy package must not depend on gRPC (it is a leaf the daemon wires in), so a
refusal carries the gRPC status *name* of its reason (``blindmatch.vocabulary``); the
daemon maps it to ``grpc.StatusCode`` and puts ``reason`` in the status details.
"""

from __future__ import annotations

from blindmatch.vocabulary import POLICY_REASONS, BlindmatchError, Reason

REASONS: tuple[Reason, ...] = POLICY_REASONS


class PolicyRefusal(BlindmatchError):
    """The holder refuses a session; nothing may be evaluated for it.

    ``message`` is written to be sent to the peer and logged as is: it names identities,
    fields and counts, never key material or record data.
    """

    def __init__(self, reason: Reason, message: str) -> None:
        if reason not in POLICY_REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(f"{reason}: {message}", Reason(reason))
        self.status = self.reason.status
        self.message = message
