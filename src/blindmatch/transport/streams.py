"""Long-lived calls that cannot starve a server: stream slots and read deadlines.

gRPC Python runs each call on one thread of the server's pool for as long as it lasts,
and reading a request stream blocks without a timeout. So 20 idle Match streams once
took every thread and GetInfo and the health check answered ``RESOURCE_EXHAUSTED`` for
as long as they stayed open. Two rules prevent it:

* :class:`StreamSlots`: a long-lived call first takes a slot, at most ``per_peer`` for
  one organisation and ``total`` in all; without one it ends at once with
  ``RESOURCE_EXHAUSTED``, reason ``busy`` (clients retry with backoff). The server's
  pool is sized to the slots plus a reserve, so short calls always find a thread.
* :class:`DeadlineReader`: the request stream is read on a helper thread, and the
  handler waits for each message with a deadline; a peer silent past it gets
  ``DEADLINE_EXCEEDED``, reason ``idle_timeout``.
* :class:`SendWatch`: a peer that stops reading responses has its call cancelled once a
  send has waited past the same deadline.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from grpc_health.v1 import health

from blindmatch.transport.status import abort, status_of
from blindmatch.vocabulary import BlindmatchError, Reason

_END = object()  # the peer half-closed its request stream
_PUT_POLL_SECONDS = 0.5


class NoSlot(BlindmatchError):
    """No stream slot is free for this peer now."""

    default_reason = Reason.BUSY


class StreamIdle(BlindmatchError):
    """The peer sent nothing within the read deadline."""

    default_reason = Reason.IDLE_TIMEOUT


class StreamSlots:
    """Counts a kind of long-lived call per peer organisation and in total (thread-safe)."""

    def __init__(self, what: str, total: int, per_peer: int) -> None:
        self.what = what
        self.total = total
        self.per_peer = per_peer
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def in_use(self, peer: str | None = None) -> int:
        with self._lock:
            return self._held[peer] if peer is not None else sum(self._held.values())

    @contextmanager
    def slot(self, peer: str) -> Iterator[None]:
        """Hold one slot for ``peer`` while the block runs; :class:`NoSlot` if none is free."""
        with self._lock:
            if self._held[peer] >= self.per_peer:
                raise NoSlot(f"{peer!r} already has {self.per_peer} {self.what} open (the limit per organisation); "
                             "retry when one ends")
            if sum(self._held.values()) >= self.total:
                raise NoSlot(f"the holder has {self.total} {self.what} open (its limit); retry shortly")
            self._held[peer] += 1
        try:
            yield
        finally:
            with self._lock:
                self._held[peer] -= 1
                if not self._held[peer]:
                    del self._held[peer]


class DeadlineReader:
    """A request stream read on its own thread, so each message can be awaited with a deadline.

    The helper thread stops when the call ends (gRPC's iterator then raises or ends) or
    when :meth:`close` is called; at most ``buffer`` messages are read ahead, so HTTP/2
    flow control still bounds what a peer can push.
    """

    def __init__(self, requests: Iterator[Any], name: str = "stream-reader", buffer: int = 4) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=buffer)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._pump, args=(requests,), name=name, daemon=True)
        self._thread.start()

    def _pump(self, requests: Iterator[Any]) -> None:
        try:
            for item in requests:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the handler thread, which raises it
            self._put(_Raised(exc))
            return
        self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=_PUT_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def next(self, timeout: float) -> Any | None:
        """The next message, None at the end of the stream; :class:`StreamIdle` after ``timeout`` seconds."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise StreamIdle(f"no message from the peer for {timeout:g} s") from None
        if item is _END:
            self._closed.set()
            return None
        if isinstance(item, _Raised):
            self._closed.set()
            raise item.exc
        return item

    def close(self) -> None:
        self._closed.set()


class SendWatch:
    """Cancels calls whose response has waited longer than its limit to be sent.

    A peer that stops reading fills HTTP/2 flow control, and gRPC then blocks the
    handler's send with no timeout; only cancelling the call frees its thread and slot.
    The peer sees ``CANCELLED`` (no reason can reach it: its stream is blocked).
    """

    def __init__(self, poll_seconds: float = 0.5) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[float, grpc.ServicerContext]] = {}
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="send-watch", daemon=True)
        self._thread.start()

    @contextmanager
    def sending(self, context: grpc.ServicerContext, limit: float) -> Iterator[None]:
        """Around a ``yield`` of a response: the call is cancelled if the send takes over ``limit`` seconds."""
        key = id(context)
        with self._lock:
            self._pending[key] = (time.monotonic() + limit, context)
        try:
            yield
        finally:
            with self._lock:
                self._pending.pop(key, None)

    def close(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self._poll):
            now = time.monotonic()
            with self._lock:
                stalled = [key for key, (deadline, _) in self._pending.items() if deadline <= now]
                contexts = [self._pending.pop(key)[1] for key in stalled]
            for context in contexts:
                context.cancel()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class BoundedHealthServicer(health.HealthServicer):  # type: ignore[misc]  # grpc_health is untyped
    """The standard health service, whose streaming ``Watch`` holds at most ``watchers`` threads.

    ``Check`` is a short call and always served; ``Watch`` lasts as long as the watcher
    likes, so without a bound a peer could take every thread with it.
    """

    def __init__(self, watchers: int) -> None:
        super().__init__()
        self._watchers = threading.BoundedSemaphore(watchers)
        self.watchers = watchers

    def Watch(self, request: Any, context: grpc.ServicerContext, send_response_callback: Any = None) -> Any:
        if not self._watchers.acquire(blocking=False):
            abort(context, status_of(Reason.BUSY), Reason.BUSY,
                  f"{self.watchers} health watchers are connected (the limit); use Check or retry later")
        if not context.add_callback(self._watchers.release):  # the call already ended
            self._watchers.release()
        return super().Watch(request, context, send_response_callback)
