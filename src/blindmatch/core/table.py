"""The transition-table machinery both session state machines share (h11's ``_state.py`` pattern).

A session class names its state enum and its own rules when it is declared::

    class HolderSession(TableSession, states=HolderState, rules={(_H.AWAITING_HELLO, Hello): ...}):

and gets the full table (its rules plus those every session shares), its terminal states,
its transcript and the one ``_step``: a lookup and a handler. An input the table does not
allow, or a handler's ``ProtocolError``, fails the session. Every state enum has a
``CLOSED`` and a ``FAILED`` member, the two ends a session can reach.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, ClassVar

from blindmatch.core.errors import ProtocolError
from blindmatch.core.events import EndOfStream, Output
from blindmatch.core.messages import Abort, Transcript
from blindmatch.vocabulary import Reason

Rules = Mapping[tuple[Any, type], Any]
Handlers = Mapping[type, Callable[[Any], Output]]


class TableSession(ABC):
    """Base of ``HolderSession`` and ``RequesterSession``: table, lookup, failure rule, transcript."""

    TRANSITIONS: ClassVar[dict[tuple[Any, type], Any]]
    CLOSED: ClassVar[Any]
    FAILED: ClassVar[Any]
    state: Any

    def __init_subclass__(cls, *, states: type[Enum], rules: Rules, **kwargs: Any) -> None:
        """Declare the session's table: ``rules`` plus the shared ones (either side may abort at
        any time, and the peer may end its stream once the session has closed)."""
        super().__init_subclass__(**kwargs)
        cls.CLOSED, cls.FAILED = states["CLOSED"], states["FAILED"]
        cls.TRANSITIONS = {
            **rules,
            (cls.CLOSED, EndOfStream): cls.CLOSED,
            **{(state, Abort): cls.FAILED for state in states},
        }

    def __init__(self, initial: Enum, handlers: Handlers) -> None:
        self.state = initial
        self._transcript = Transcript()
        self._handlers: Handlers = {**handlers, Abort: self._on_abort, EndOfStream: lambda _end: Output()}

    @property
    def closed(self) -> bool:
        return self.state is self.CLOSED

    @property
    def transcript_hash(self) -> bytes:
        """The digest of every message of the session so far; both sides' must agree at the Close."""
        return self._transcript.digest()

    @abstractmethod
    def _on_abort(self, abort: Abort) -> Output:
        """The peer aborted: raise the ``ProtocolError`` that names why (the session fails)."""

    def _step(self, event: object) -> Output:
        next_state = self.TRANSITIONS.get((self.state, type(event)))
        if next_state is None:
            current, self.state = self.state, self.FAILED
            raise self._not_allowed(current, event)
        try:
            output = self._handlers[type(event)](event)
        except ProtocolError:
            self.state = self.FAILED
            raise
        self.state = next_state
        return output

    def _not_allowed(self, current: Enum, event: object) -> ProtocolError:
        return ProtocolError(Reason.UNEXPECTED_MESSAGE, f"{type(event).__name__} not allowed in state {current.name}")
