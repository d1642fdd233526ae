"""The one exception type of the protocol core."""

from __future__ import annotations

from blindmatch.vocabulary import PROTOCOL_CODES, BlindmatchError, Reason


class ProtocolError(BlindmatchError):
    """A peer broke the protocol, or the two peers cannot talk (versions, keys, schemas).

    ``code`` is one of the vocabulary's protocol codes (SPEC.md, "Errors"); ``message`` is
    safe to show to the peer and to log: it never contains keys, records or blinding factors.
    """

    CODES: tuple[Reason, ...] = PROTOCOL_CODES

    def __init__(self, code: Reason, message: str) -> None:
        if code not in self.CODES:
            raise ValueError(f"unknown protocol error code {code!r}")
        super().__init__(f"{code}: {message}", Reason(code))
        self.code = Reason(code)
        self.message = message
