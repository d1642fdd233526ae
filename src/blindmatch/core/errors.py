"""The one exception type of the protocol core."""

from __future__ import annotations


class ProtocolError(Exception):
    """A peer broke the protocol, or the two peers cannot talk (versions, keys, schemas).

    ``code`` is machine-readable and stable (SPEC.md, "Errors"); ``message`` is safe to
    show to the peer and to log: it never contains keys, records or blinding factors.
    """

    CODES = (
        "unexpected_message",
        "bad_version",
        "key_mismatch",
        "schema_mismatch",
        "index_mismatch",
        "limit_exceeded",
        "invalid_element",
        "commitment_mismatch",
        "transcript_mismatch",
        "bad_request",
        "refused",
    )

    def __init__(self, code: str, message: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown protocol error code {code!r}")
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
