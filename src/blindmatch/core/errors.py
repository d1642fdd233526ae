"""The one exception type of the protocol core, and how it quotes what a peer wrote."""

from __future__ import annotations

from blindmatch.vocabulary import PROTOCOL_CODES, BlindmatchError, Reason

# The most of a peer's own words (an Abort's message, a status's details) quoted in an error.
PEER_TEXT_LIMIT = 200


def peer_text(text: str, limit: int = PEER_TEXT_LIMIT) -> str:
    """Text the peer chose, fit to quote in our messages and logs: cut to ``limit``
    characters and, unless every character is printable, escaped as a Python literal, so a
    line break, terminal escape or bidi override cannot forge or disguise a log line."""
    text = text[:limit]
    return text if text.isprintable() else repr(text)


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
