"""The transition-table step both session state machines share (h11's ``_state.py`` pattern).

A session keeps ``state``, a class-level ``TRANSITIONS`` table of (state, input type) ->
next state and a handler per input type. ``step`` is a lookup and a handler: an input
the table does not allow, or a handler's ``ProtocolError``, fails the session.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from blindmatch.core.errors import ProtocolError
from blindmatch.core.events import EndOfStream, Output
from blindmatch.core.messages import Abort
from blindmatch.vocabulary import Reason


def table(own: dict[tuple[Any, type], Any], states: type[Enum], closed: Any, failed: Any) -> dict[tuple[Any, type], Any]:
    """``own`` plus the rules every session shares: either side may abort at any time, and
    the peer may end its stream once the session has closed."""
    return {**own, (closed, EndOfStream): closed, **{(state, Abort): failed for state in states}}


class TableSession:
    """Base of ``HolderSession`` and ``RequesterSession``: the table lookup and the failure rule."""

    TRANSITIONS: dict[tuple[Any, type], Any]
    FAILED: Any
    state: Any
    _handlers: dict[type, Callable[[Any], Output]]

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
