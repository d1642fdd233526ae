"""Names of organisations and officials, as the policy, the configs and the audit log accept them.

One rule for all three, so that a name the holder's policy accepts can always be written
to the audit log (a session must never be debited and then fail to be recorded).
Letters of any script, digits, single spaces and a few separators common in names
(``O'Brien``, ``Smith & Sons``, ``Dept. of Revenue (North)``); no control characters,
quotes or line breaks that could forge log lines or reports.
"""

from __future__ import annotations

import re

IDENTITY_MAX = 128
_IDENTITY_RE = re.compile(r"[\w.'&:@/=+,()#-]+(?: [\w.'&:@/=+,()#-]+)*")


def identity_problem(value: object) -> str | None:
    """Why ``value`` is not an acceptable identity, or None when it is."""
    if not isinstance(value, str):
        return "must be a string"
    if not 0 < len(value) <= IDENTITY_MAX or not _IDENTITY_RE.fullmatch(value):
        return (
            f"must be an identity: 1..{IDENTITY_MAX} characters, letters, digits, "
            "\".'&:@/=+,()#-\" and single spaces"
        )
    return None
