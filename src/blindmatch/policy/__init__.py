"""Holder-side matching policy: who may ask, with which signed request, within which budget.

A leaf package (stdlib + ``cryptography``, no gRPC): the daemon passes in the mTLS
identity, the session's data bindings and the current time, and maps a
:class:`PolicyRefusal` to a gRPC status by its ``status`` name.
"""

from blindmatch.policy.authorize import CLOCK_SKEW, MAX_LIFETIME, Authorizer, Grant
from blindmatch.policy.budget import BudgetStore, Debit, DebitRecord, Window
from blindmatch.policy.errors import REASONS, PolicyRefusal
from blindmatch.policy.keys import (
    GeneratedKey,
    OfficialKeyError,
    generate_official_key,
    load_official_key,
    parse_public_key,
)
from blindmatch.policy.officials import Limits, Official, Policy, PolicyError
from blindmatch.policy.request import (
    MODES,
    RequestFormatError,
    SessionRequest,
    open_envelope,
    sign_request,
    verify_request_signature,
)

__all__ = [
    "CLOCK_SKEW",
    "MAX_LIFETIME",
    "MODES",
    "REASONS",
    "Authorizer",
    "BudgetStore",
    "Debit",
    "DebitRecord",
    "GeneratedKey",
    "Grant",
    "Limits",
    "Official",
    "OfficialKeyError",
    "Policy",
    "PolicyError",
    "PolicyRefusal",
    "RequestFormatError",
    "SessionRequest",
    "Window",
    "generate_official_key",
    "load_official_key",
    "open_envelope",
    "parse_public_key",
    "sign_request",
    "verify_request_signature",
]
