"""The project's one vocabulary: session modes, failure reasons, exit codes and the error root.

Every reason is spelled here and nowhere else in ``src/``: the core, the policy, the
daemons, the audit schema and the CLI all take ``Reason`` members from this module, so a
reason cannot be a refusal in one place and a plain failure in another, and the same
failure exits the same way from every command. SPEC.md sections 7.7 and 9.5 list the
reasons on the wire with their gRPC status (a test compares them with this module).

This module imports nothing of blindmatch and no I/O library: every layer may use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Mode(StrEnum):
    """What a session reveals: which keys matched, or only how many did (SPEC.md section 6)."""

    MEMBERSHIP = "membership"
    CARDINALITY = "cardinality"


class ExitCode(IntEnum):
    """The ``blindmatch`` command's exit codes (README, "Commands")."""

    OK = 0
    FAILURE = 1
    USAGE = 2  # bad arguments, configuration or input file: fix them and run again
    REFUSED = 3  # the holder refused the session: nothing was evaluated for it
    UNAVAILABLE = 4  # the holder could not be reached
    QUEUED = 5  # the requester daemon stopped; the job stays queued and resumes
    AWAITING_APPROVAL = 6  # the job is prepared and waits for officials: blindmatch official approve JOB
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class Kind(StrEnum):
    """Who produces a reason: the holder's policy, the protocol core, the daemons, or this machine."""

    POLICY = "policy"  # SPEC.md 7.7
    PROTOCOL = "protocol"  # SPEC.md 12
    SERVICE = "service"  # the holder's service around the core (SPEC.md 9.5)
    LOCAL = "local"  # never on the wire
    WITNESS = "witness"  # the audit witness's refusals of a checkpoint (SPEC.md 14.4)


class Reason(StrEnum):
    """Why a session or a command did not succeed. The value is the stable, machine-readable code."""

    # The holder's policy (SPEC.md 7.7).
    UNSIGNED = "unsigned"
    UNKNOWN_OFFICIAL = "unknown_official"
    WRONG_ORGANISATION = "wrong_organisation"
    EXPIRED = "expired"
    REPLAYED = "replayed"
    OVER_BUDGET = "over_budget"
    MODE_NOT_ALLOWED = "mode_not_allowed"
    TOO_FEW_RECORDS = "too_few_records"
    KEY_SPENT = "key_spent"
    DUAL_CONTROL_MISSING = "dual_control_missing"
    # The protocol core (SPEC.md 12).
    UNEXPECTED_MESSAGE = "unexpected_message"
    BAD_VERSION = "bad_version"
    KEY_MISMATCH = "key_mismatch"
    EPOCH_ENDED = "epoch_ended"
    SCHEMA_MISMATCH = "schema_mismatch"
    INDEX_MISMATCH = "index_mismatch"
    LIMIT_EXCEEDED = "limit_exceeded"
    INVALID_ELEMENT = "invalid_element"
    COMMITMENT_MISMATCH = "commitment_mismatch"
    TRANSCRIPT_MISMATCH = "transcript_mismatch"
    PROOF_INVALID = "proof_invalid"
    BAD_REQUEST = "bad_request"
    REFUSED = "refused"
    # The holder's service (SPEC.md 9.5, 10.2.1).
    ORGANISATION_NOT_ALLOWED = "organisation_not_allowed"
    TLS_VERSION = "tls_version"
    BUSY = "busy"
    IDLE_TIMEOUT = "idle_timeout"
    CANCELLED = "cancelled"
    INTERNAL = "internal"
    AUDIT_UNAVAILABLE = "audit_unavailable"
    # Only this machine sees these.
    HOLDER_UNAVAILABLE = "holder_unavailable"
    HOLDER_NOT_PINNED = "holder_not_pinned"
    BAD_INPUT = "bad_input"
    FAILED = "failed"
    # The audit witness (SPEC.md 14.4); it also answers bad_request and organisation_not_allowed.
    UNKNOWN_LOG = "unknown_log"
    BAD_SIGNATURE = "bad_signature"
    SIZE_CONFLICT = "size_conflict"
    FORK = "fork"
    BAD_PROOF = "bad_proof"

    @property
    def traits(self) -> Traits:
        return TRAITS[self]

    @property
    def status(self) -> str:
        """The gRPC status name the holder ends the call with (``UNKNOWN`` for local reasons)."""
        return TRAITS[self].status

    @property
    def is_refusal(self) -> bool:
        """The session ended without being served: audited as ``session_refused``, the job ends ``refused``."""
        return TRAITS[self].refusal

    @property
    def exit_code(self) -> ExitCode:
        return TRAITS[self].exit_code

    @property
    def kind(self) -> Kind:
        return TRAITS[self].kind


@dataclass(frozen=True)
class Traits:
    kind: Kind
    status: str
    refusal: bool
    exit_code: ExitCode


def _policy(status: str) -> Traits:
    return Traits(Kind.POLICY, status, True, ExitCode.REFUSED)


def _protocol(status: str) -> Traits:
    return Traits(Kind.PROTOCOL, status, True, ExitCode.REFUSED)


TRAITS: dict[Reason, Traits] = {
    # The request's authenticity (or its coverage of this session's data) cannot be established.
    Reason.UNSIGNED: _policy("UNAUTHENTICATED"),
    # The peer is authenticated (mTLS) but the named person holds no authority here.
    Reason.UNKNOWN_OFFICIAL: _policy("PERMISSION_DENIED"),
    Reason.WRONG_ORGANISATION: _policy("PERMISSION_DENIED"),
    Reason.MODE_NOT_ALLOWED: _policy("PERMISSION_DENIED"),
    # A session this large needs more officials' signatures than it carries.
    Reason.DUAL_CONTROL_MISSING: _policy("PERMISSION_DENIED"),
    # Not DEADLINE_EXCEEDED, which would invite a blind retry: the request must be re-issued.
    Reason.EXPIRED: _policy("FAILED_PRECONDITION"),
    # The same request over more records would pass: neither a permission nor a quota.
    Reason.TOO_FEW_RECORDS: _policy("FAILED_PRECONDITION"),
    Reason.REPLAYED: _policy("ALREADY_EXISTS"),
    Reason.OVER_BUDGET: _policy("RESOURCE_EXHAUSTED"),
    # The holder's OPRF key reached its lifetime cap of evaluations: it must rotate (SPEC.md 7.6).
    Reason.KEY_SPENT: _policy("RESOURCE_EXHAUSTED"),
    # The peers cannot talk as configured: refreshing state (GetInfo, DownloadIndex, schema) helps.
    Reason.BAD_VERSION: _protocol("FAILED_PRECONDITION"),
    Reason.KEY_MISMATCH: _protocol("FAILED_PRECONDITION"),
    # The Hello names a key whose epoch is over (SPEC.md 2.1): follow the rotation statement, download again.
    Reason.EPOCH_ENDED: _protocol("FAILED_PRECONDITION"),
    Reason.SCHEMA_MISMATCH: _protocol("FAILED_PRECONDITION"),
    Reason.INDEX_MISMATCH: _protocol("FAILED_PRECONDITION"),
    Reason.LIMIT_EXCEEDED: _protocol("RESOURCE_EXHAUSTED"),
    # The peer sent something wrong: a client bug or an attack, never retryable as is.
    Reason.INVALID_ELEMENT: _protocol("INVALID_ARGUMENT"),
    Reason.BAD_REQUEST: _protocol("INVALID_ARGUMENT"),
    Reason.COMMITMENT_MISMATCH: _protocol("INVALID_ARGUMENT"),
    Reason.TRANSCRIPT_MISMATCH: _protocol("INVALID_ARGUMENT"),
    Reason.UNEXPECTED_MESSAGE: _protocol("INVALID_ARGUMENT"),
    # The holder's evaluation does not verify against the pinned key (SPEC.md 5.5).
    Reason.PROOF_INVALID: _protocol("INVALID_ARGUMENT"),
    # A core-level refusal without a policy reason (the holder's service always sends the policy's).
    Reason.REFUSED: Traits(Kind.LOCAL, "PERMISSION_DENIED", True, ExitCode.REFUSED),
    Reason.ORGANISATION_NOT_ALLOWED: Traits(Kind.SERVICE, "PERMISSION_DENIED", True, ExitCode.REFUSED),
    # The holder could not write the session's audit entry, so it debited and evaluated nothing.
    Reason.AUDIT_UNAVAILABLE: Traits(Kind.SERVICE, "UNAVAILABLE", True, ExitCode.UNAVAILABLE),
    # The connection negotiated less than TLS 1.3 (gRPC cannot refuse it in the handshake).
    Reason.TLS_VERSION: Traits(Kind.SERVICE, "UNAUTHENTICATED", False, ExitCode.FAILURE),
    # No room for another stream now (per organisation or in total): retry with backoff.
    Reason.BUSY: Traits(Kind.SERVICE, "RESOURCE_EXHAUSTED", False, ExitCode.UNAVAILABLE),
    # The peer sent nothing for the holder's idle or Hello timeout: the call is over.
    Reason.IDLE_TIMEOUT: Traits(Kind.SERVICE, "DEADLINE_EXCEEDED", False, ExitCode.FAILURE),
    # A granted session that ended early: not refusals (settled to the elements evaluated).
    Reason.CANCELLED: Traits(Kind.SERVICE, "CANCELLED", False, ExitCode.FAILURE),
    Reason.INTERNAL: Traits(Kind.SERVICE, "INTERNAL", False, ExitCode.FAILURE),
    Reason.HOLDER_UNAVAILABLE: Traits(Kind.LOCAL, "UNAVAILABLE", True, ExitCode.UNAVAILABLE),
    # The server is not the pinned holder (organisation, OPRF key or audit key differ): stop, never retry.
    Reason.HOLDER_NOT_PINNED: Traits(Kind.LOCAL, "FAILED_PRECONDITION", False, ExitCode.FAILURE),
    Reason.BAD_INPUT: Traits(Kind.LOCAL, "UNKNOWN", False, ExitCode.USAGE),
    Reason.FAILED: Traits(Kind.LOCAL, "UNKNOWN", False, ExitCode.FAILURE),
    # A witness refusing a checkpoint: the submitting daemon keeps its log and retries or alerts.
    Reason.UNKNOWN_LOG: Traits(Kind.WITNESS, "NOT_FOUND", False, ExitCode.FAILURE),
    Reason.BAD_SIGNATURE: Traits(Kind.WITNESS, "PERMISSION_DENIED", False, ExitCode.FAILURE),
    Reason.SIZE_CONFLICT: Traits(Kind.WITNESS, "ABORTED", False, ExitCode.FAILURE),
    Reason.FORK: Traits(Kind.WITNESS, "FAILED_PRECONDITION", False, ExitCode.FAILURE),
    Reason.BAD_PROOF: Traits(Kind.WITNESS, "INVALID_ARGUMENT", False, ExitCode.FAILURE),
}

POLICY_REASONS: tuple[Reason, ...] = tuple(r for r in Reason if r.kind is Kind.POLICY)
PROTOCOL_CODES: tuple[Reason, ...] = (*(r for r in Reason if r.kind is Kind.PROTOCOL), Reason.REFUSED)
# What ``session_refused`` may name; ``session_failed`` also allows the three end-of-session reasons.
REFUSAL_REASONS: frozenset[Reason] = frozenset(r for r in Reason if r.is_refusal)
FAILURE_REASONS: frozenset[Reason] = REFUSAL_REASONS | {Reason.CANCELLED, Reason.INTERNAL, Reason.IDLE_TIMEOUT}
# What the holder's service may end a call with (SPEC.md 9.5).
WIRE_REASONS: tuple[Reason, ...] = tuple(r for r in Reason if r.kind not in (Kind.LOCAL, Kind.WITNESS))
# What the witness may refuse a checkpoint with (SPEC.md 14.4).
WITNESS_REASONS: tuple[Reason, ...] = (
    *(r for r in Reason if r.kind is Kind.WITNESS), Reason.BAD_REQUEST, Reason.ORGANISATION_NOT_ALLOWED,
    Reason.TLS_VERSION)


class JobState(StrEnum):
    """Where a requester job is; a job that did not succeed ends in the state its reason implies."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    HOLDER_UNAVAILABLE = "holder_unavailable"
    AWAITING_APPROVAL = "awaiting_approval"  # prepared; no request is sent before officials sign it
    REJECTED = "rejected"  # an official refused the prepared job; nothing was sent

    @classmethod
    def ended_by(cls, reason: Reason) -> JobState:
        return _STATE_FOR_EXIT.get(reason.exit_code, cls.FAILED)

    @property
    def exit_code(self) -> ExitCode:
        return _EXIT_FOR_STATE[self]


_STATE_FOR_EXIT = {ExitCode.REFUSED: JobState.REFUSED, ExitCode.UNAVAILABLE: JobState.HOLDER_UNAVAILABLE}
_EXIT_FOR_STATE = {
    JobState.QUEUED: ExitCode.QUEUED,
    JobState.RUNNING: ExitCode.QUEUED,
    JobState.SUCCEEDED: ExitCode.OK,
    JobState.FAILED: ExitCode.FAILURE,
    JobState.REFUSED: ExitCode.REFUSED,
    JobState.HOLDER_UNAVAILABLE: ExitCode.UNAVAILABLE,
    JobState.AWAITING_APPROVAL: ExitCode.AWAITING_APPROVAL,
    JobState.REJECTED: ExitCode.FAILURE,
}


def exit_code_for_job(state: str, reason: str) -> ExitCode:
    """What ``blindmatch requester match`` exits with for a job that ended ``state`` because of ``reason``."""
    if state == JobState.FAILED and reason:
        return reason_named(reason).exit_code
    return JobState(state).exit_code


def reason_named(code: str, default: Reason = Reason.FAILED) -> Reason:
    """The member for a code read from the wire or a store; ``default`` for an unknown or empty one."""
    try:
        return Reason(code)
    except ValueError:
        return default


class BlindmatchError(Exception):
    """The root of every error blindmatch raises on purpose; ``reason`` says what kind of failure it is.

    ``message`` is written to be shown and logged as is: it never contains keys, blinds,
    records or match keys.
    """

    default_reason: Reason = Reason.FAILED

    def __init__(self, message: str = "", reason: Reason | None = None) -> None:
        super().__init__(message)
        self.reason: Reason = reason if reason is not None else self.default_reason

    @property
    def exit_code(self) -> ExitCode:
        return self.reason.exit_code


class InputError(BlindmatchError):
    """A file, argument or configuration value is wrong; the message names it."""

    default_reason = Reason.BAD_INPUT
