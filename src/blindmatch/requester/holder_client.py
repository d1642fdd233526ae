"""The requester's gRPC client of the holder: mTLS channel, GetInfo, index download, Match.

Every failure is turned into one of three exceptions the runner can act on:
:class:`HolderUnavailable` (wait and resume), :class:`HolderRefused` (the holder's
policy said no: a person must act) and :class:`HolderError` (anything else, with the
gRPC status name and the holder's reason code).
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc

from blindmatch.audit.checkpoint import CheckpointError
from blindmatch.audit.keys import verify_transcript_signature
from blindmatch.audit.peer_checkpoints import verify_peer_note
from blindmatch.core.errors import ProtocolError, peer_text
from blindmatch.core.events import Event
from blindmatch.core.messages import Abort, BlindedBatch, Close, Closed, EvaluatedBatch, Hello
from blindmatch.core.pacing import pace
from blindmatch.core.requester import RequesterSession
from blindmatch.core.rotation import Pin, RotationError
from blindmatch.requester.config import HolderEndpoint
from blindmatch.requester.pins import PinStore, configured_pin
from blindmatch.transport.retry import call_with_retry, is_retryable
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.transport.tls import channel_credentials, server_organisation
from blindmatch.transport.wire import (
    MODE_TO_PB,
    client_message_to_pb,
    server_message_from_pb,
)
from blindmatch.v1 import holder_pb2 as pb
from blindmatch.v1 import holder_pb2_grpc as pb_grpc
from blindmatch.vocabulary import BlindmatchError, Mode, Reason, reason_named

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
# HTTP/2 keepalive: a holder whose host vanished (no RST, no FIN) is noticed within ~30 s
# instead of the kernel's TCP timeout of many minutes. Pings are sent only while a call
# is active, also when no data flows (a cardinality session waits for all evaluations),
# so the holder must allow pings without data every 20 s (server option
# grpc.http2.min_ping_interval_without_data_ms of at most 20000) or it answers GOAWAY.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 0),
    ("grpc.http2.max_pings_without_data", 0),
)
_WATCHDOG_POLL_SECONDS = 0.25
# The holder's status details quoted in our errors (its messages are a line or two).
MAX_DETAILS_CHARS = 2000
# How long a Match session may go on once the requester is asked to stop: a session cut
# short costs the elements the holder already evaluated and a session to redo, and most
# finish in well under this (issue 17).
SESSION_FINISH_GRACE_SECONDS = 10.0


class HolderError(BlindmatchError):
    """A call failed; ``status`` is the gRPC status name, ``code`` the reason the holder gave ("" if none).

    ``reason`` is the vocabulary member the failure counts as: the holder's reason when it
    gave one, otherwise what the kind of failure implies (unavailable, or failed).
    """

    default_reason = Reason.FAILED

    def __init__(self, message: str, status: str = "", code: str = "") -> None:
        super().__init__(message, reason_named(code, self.default_reason) if code else None)
        self.status = status
        self.code = code


class HolderUnavailable(HolderError):
    """The holder cannot be reached (down, restarting, draining)."""

    default_reason = Reason.HOLDER_UNAVAILABLE


class HolderNotPinned(HolderError):
    """The server is not the holder requester.toml pins: the message names what differed."""

    default_reason = Reason.HOLDER_NOT_PINNED

    def __init__(self, message: str) -> None:
        # A local reason, but the job ends with it like a holder's: the store and the CLI name it.
        super().__init__(message, Reason.HOLDER_NOT_PINNED.status, Reason.HOLDER_NOT_PINNED.value)


def check_pinned_info(pin: Pin, info: pb.HolderInfo) -> None:
    """GetInfo must announce exactly the pinned OPRF key (and its key id) and audit key.

    A changed key is never taken from GetInfo alone: only through rotation statements that
    chain from the pin (``requester.pins``), or a new pin in requester.toml.
    """
    if info.oprf_public_key != pin.oprf_public_key:
        raise HolderNotPinned(
            f"the holder's OPRF public key {info.oprf_public_key.hex()[:16]}... is not the pinned "
            f"{pin.oprf_public_key.hex()[:16]}... (holder.oprf_public_key); if the holder rotated its key, "
            "pin the new one after checking it out of band")
    if info.key_id != pin.key_id:
        raise HolderNotPinned("the holder's key id does not name the pinned OPRF public key")
    if info.audit_public_key != pin.audit_public_key:
        raise HolderNotPinned(
            f"the holder's audit key {info.audit_public_key.hex()[:16]}... is not the pinned "
            f"{pin.audit_public_key.hex()[:16]}... (holder.audit_public_key)")
    if info.organisation != pin.organisation:
        raise HolderNotPinned(
            f"the holder calls itself {info.organisation!r}, not the pinned organisation {pin.organisation!r}")


class HolderRefused(HolderError):
    """The holder refused the session (a reason whose ``is_refusal`` holds)."""


def translate(error: grpc.RpcError, what: str) -> HolderError:
    """The exception for a failed call, carrying the status name and reason (no record data)."""
    code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
    reason = reason_from_rpc_error(error)
    details = peer_text(error.details() or "", MAX_DETAILS_CHARS) if callable(getattr(error, "details", None)) else ""
    message = f"{what}: holder returned {code.name}" + (f" ({details})" if details else "")
    if reason and reason_named(reason).is_refusal:
        return HolderRefused(message, code.name, reason)
    if is_retryable(error):  # connection failures, a draining or busy holder: worth waiting out
        return HolderUnavailable(message, code.name, reason)
    return HolderError(message, code.name, reason)


class _Watchdog:
    """Cancels a streaming call that makes no progress, or when the caller is stopping.

    Keepalive only proves the holder's HTTP/2 stack answers; a holder that is alive but
    stuck would otherwise hold the call (and the requester daemon's SIGTERM drain) forever.
    """

    def __init__(self, call: grpc.Future, timeout: float, stop: threading.Event | None,
                 finish_grace: float = 0.0) -> None:
        """``finish_grace``: seconds the call may still run once ``stop`` is set."""
        self._call = call
        self._timeout = timeout
        self._stop = stop
        self._finish_grace = finish_grace
        self._stopping_since: float | None = None
        self._deadline = time.monotonic() + timeout
        self._done = threading.Event()
        self.fired = ""  # "stalled" or "stopping" once the call was cancelled
        self._thread = threading.Thread(target=self._watch, name="holder-watchdog", daemon=True)
        self._thread.start()

    def progress(self, allowance: int = 1) -> None:
        """The holder answered; it has ``allowance`` timeouts for the next answer."""
        self._deadline = time.monotonic() + self._timeout * allowance

    def _watch(self) -> None:
        while not self._done.wait(_WATCHDOG_POLL_SECONDS):
            if self._stop is not None and self._stop.is_set() and self._grace_over():
                self.fired = "stopping"
            elif time.monotonic() >= self._deadline:
                self.fired = "stalled"
            else:
                continue
            self._call.cancel()
            return

    def _grace_over(self) -> bool:
        if self._stopping_since is None:
            self._stopping_since = time.monotonic()
        return time.monotonic() - self._stopping_since >= self._finish_grace

    def close(self) -> None:
        self._done.set()
        self._thread.join()

    def error(self, what: str) -> HolderUnavailable | None:
        """What the cancelled call means for the runner (None when the watchdog did not fire)."""
        if self.fired == "stalled":
            return HolderUnavailable(f"{what}: no answer from the holder for {self._timeout:g} s", "DEADLINE_EXCEEDED")
        if self.fired == "stopping":
            return HolderUnavailable(f"{what}: cancelled, the requester is stopping", "CANCELLED")
        return None


class HolderClient:
    """One mTLS channel to the holder; cheap enough to create per attempt.

    Streaming calls are cancelled when the holder sends nothing for ``endpoint.batch_timeout_seconds``
    (raising :class:`HolderUnavailable`, so the job retries and resumes), and promptly when
    ``stop`` is set, so a stalled holder cannot block a shutdown.
    """

    def __init__(
        self,
        endpoint: HolderEndpoint,
        call_timeout: float = 30.0,
        stop: threading.Event | None = None,
        on_wire: Callable[[str, int], None] = lambda _direction, _size: None,
        pins: PinStore | None = None,
    ) -> None:
        """``on_wire(direction, size)`` sees the encoded size of every Match message ("up" or "down");
        with ``pins``, a key rotation the holder announces with valid statements moves the pin."""
        credentials = channel_credentials(endpoint.ca_cert, endpoint.key, endpoint.cert, HolderError)
        options: list[tuple[str, object]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            *KEEPALIVE_OPTIONS,
        ]
        if endpoint.server_name:
            options.append(("grpc.ssl_target_name_override", endpoint.server_name))
        self._channel = grpc.secure_channel(endpoint.address, credentials, options=options)
        self._stub = pb_grpc.HolderStub(self._channel)
        self._timeout = call_timeout
        self._batch_timeout = endpoint.batch_timeout_seconds
        self._retry_seconds = endpoint.retry_seconds
        self._stop = stop
        self._on_wire = on_wire
        self._endpoint = endpoint
        self._pinned_checked = False
        self._pins = pins
        self.pin = pins.current() if pins is not None else configured_pin(endpoint)

    def _check_certificate(self) -> None:
        """Once per client, before its first call: the server certificate's O= is the pinned organisation."""
        if self._pinned_checked:
            return
        endpoint = self._endpoint
        try:
            organisation = server_organisation(endpoint.address, endpoint.ca_cert, endpoint.key, endpoint.cert,
                                               endpoint.server_name, HolderError)
        except ConnectionError as exc:
            raise HolderUnavailable(str(exc), "UNAVAILABLE") from None
        if organisation != endpoint.organisation:
            raise HolderNotPinned(
                f"the server at {endpoint.address} has a certificate of organisation {organisation!r}, "
                f"not of the pinned holder {endpoint.organisation!r} (holder.organisation)")
        self._pinned_checked = True

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> HolderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def info(self, official: str = "") -> pb.HolderInfo:
        """GetInfo, retried with backoff while the holder is busy or unreachable (up to ``retry_seconds``),
        and refused unless the holder is the pinned one (certificate organisation and keys)."""
        self._check_certificate()
        request = pb.GetInfoRequest(official=official)
        try:
            info: pb.HolderInfo = call_with_retry(lambda: self._stub.GetInfo(request, timeout=self._timeout),
                                                  self._retry_seconds, stop=self._stop)
        except grpc.RpcError as exc:
            raise translate(exc, "GetInfo") from None
        _check_index_sizes(info)
        self._follow_rotation(info)
        check_pinned_info(self.pin, info)
        return info

    def _follow_rotation(self, info: pb.HolderInfo) -> None:
        """Move the pin to announced keys that the holder's rotation statements lead to (SPEC.md 2.3)."""
        announced = (info.oprf_public_key, info.audit_public_key)
        if self._pins is None or announced == (self.pin.oprf_public_key, self.pin.audit_public_key):
            return
        if info.organisation != self.pin.organisation:
            return  # check_pinned_info names the organisation
        try:
            self.pin = self._pins.follow(list(info.key_rotations), *announced)
        except RotationError as exc:
            raise HolderNotPinned(
                f"the holder announces OPRF key {info.oprf_public_key.hex()[:16]}... and audit key "
                f"{info.audit_public_key.hex()[:16]}..., not the pinned ones, and {exc}; pin the new keys in "
                "requester.toml after checking them out of band") from None

    def download_index(
        self,
        kind: Mode,
        digest: bytes,
        destination: Path,
        on_progress: Callable[[int, int], None] | None = None,
        issuer_epoch: str = "",
        size: int | None = None,
    ) -> Path:
        """Fetch the index into ``destination``, resuming a ``.part`` file left by an earlier try.

        The bytes are trusted only once their SHA-256 equals ``digest`` (from GetInfo); a
        partial file that turns out wrong is deleted so the next try starts afresh.
        ``issuer_epoch`` (sessions on tokens) asks the holder to refuse an index of any other.
        ``size`` (GetInfo's ``size_bytes``) bounds what the holder may send, so it cannot fill the disk.
        """
        self._check_certificate()
        part = destination.with_name(destination.name + ".part")
        offset = part.stat().st_size if part.exists() else 0
        if size is not None:
            _check_room(destination.parent, size, offset)
        request = pb.DownloadIndexRequest(kind=MODE_TO_PB[kind], digest=digest, offset=offset, issuer_epoch=issuer_epoch)
        call = self._stub.DownloadIndex(request, timeout=None)
        watchdog = _Watchdog(call, self._batch_timeout, self._stop)
        try:
            with part.open("ab") as out:
                for chunk in call:
                    watchdog.progress()
                    if chunk.offset != offset:
                        raise HolderError(f"DownloadIndex: chunk at offset {chunk.offset}, expected {offset}")
                    if size is not None and offset + len(chunk.data) > size:
                        part.unlink(missing_ok=True)  # bytes beyond the index are not the index
                        raise HolderError(f"DownloadIndex: the holder sent more than the {size} bytes GetInfo announced")
                    out.write(chunk.data)
                    offset += len(chunk.data)
                    if on_progress is not None:
                        on_progress(offset, chunk.total_bytes)
                out.flush()
                os.fsync(out.fileno())
        except grpc.RpcError as exc:
            error = watchdog.error("DownloadIndex") or translate(exc, "DownloadIndex")
            if error.status == "OUT_OF_RANGE":
                part.unlink(missing_ok=True)  # our partial file is longer than the index
            raise error from None
        finally:
            watchdog.close()
        hasher = hashlib.sha256()
        with part.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                hasher.update(block)
        if hasher.digest() != digest:
            part.unlink()
            raise HolderError("DownloadIndex: downloaded index does not match the digest announced by GetInfo")
        os.replace(part, destination)
        return destination

    def match(
        self,
        session: RequesterSession,
        authorization: bytes,
        window: int,
        seal: Callable[[Close], Close],
        holder_audit_key: bytes,
        on_event: Callable[[Event], None],
    ) -> Closed:
        """Run one Match session to its verified Closed.

        Keeps up to ``window`` blinded batches in flight (``core.pacing.pace``). Every core
        event goes to ``on_event`` as it happens (a ``BatchReceived`` once its batch has been
        looked up, so the caller can persist it before more are asked for).
        ``seal(close)`` returns the core's Close with this side's audit fields (transcript
        signature, audit key, checkpoint) filled in.
        """
        self._check_certificate()
        outbox: queue.SimpleQueue[Hello | BlindedBatch | Close | Abort | None] = queue.SimpleQueue()

        def requests() -> Iterator[pb.MatchClientMessage]:
            while (message := outbox.get()) is not None:
                encoded = client_message_to_pb(message)
                self._on_wire("up", encoded.ByteSize())
                yield encoded

        outbox.put(session.hello(authorization))
        call = self._stub.Match(requests(), timeout=None)
        watchdog = _Watchdog(call, self._batch_timeout, self._stop, finish_grace=SESSION_FINISH_GRACE_SECONDS)
        closed: Closed | None = None
        try:
            for reply in call:
                self._on_wire("down", reply.ByteSize())
                message = server_message_from_pb(reply)
                # A cardinality holder answers only once it has evaluated every batch.
                waiting_for_all = session.mode is Mode.CARDINALITY and not isinstance(message, EvaluatedBatch)
                watchdog.progress(len(session.batch_digests) if waiting_for_all else 1)
                if isinstance(message, Closed):
                    _check_closed(session, message, holder_audit_key)
                    closed = message
                output = session.receive(message)
                for out in output.messages:
                    assert isinstance(out, Close)
                    outbox.put(seal(out))
                for event in output.events:
                    on_event(event)
                for batch in pace(session, window):
                    outbox.put(batch)
                if session.closed:
                    outbox.put(None)  # half-close; the holder ends the call
                    _drain(call)  # its verified Closed ended the session: what follows is no part of it
                    break
        except ProtocolError as exc:
            _tell_holder(outbox, call, exc)
            raise
        except grpc.RpcError as exc:
            raise (watchdog.error("Match") or translate(exc, "Match")) from None
        finally:
            watchdog.close()
            outbox.put(None)
            call.cancel()
        if closed is None or not session.closed:
            raise HolderUnavailable("Match: the holder ended the session before Closed", "UNAVAILABLE")
        return closed


def _check_room(directory: Path, size: int, offset: int) -> None:
    """Refuse, before asking, an index the disk cannot hold: the holder announces its size."""
    free = shutil.disk_usage(directory).free
    if size - offset > free:
        raise HolderError(f"DownloadIndex: the holder announces an index of {size} bytes; {directory} has "
                          f"{free} bytes free")


def _tell_holder(outbox: queue.SimpleQueue[Hello | BlindedBatch | Close | Abort | None], call: Any,
                 error: ProtocolError) -> None:
    """Send the holder an Abort naming why this side ends the session, so its audit log says so.

    The holder ends the call once it has read the Abort; its closing status is expected
    and ignored (the watchdog bounds the wait).
    """
    outbox.put(Abort(error.code, error.message))
    outbox.put(None)
    _drain(call)


def _drain(call: Any) -> None:
    """Read a call to its end, ignoring its messages and closing status: the session is over.

    After our Abort the holder's status is expected; after its verified Closed, a message or
    an error status more cannot undo the session both sides signed (the watchdog bounds both waits).
    """
    try:
        for _reply in call:
            pass
    except grpc.RpcError:
        pass


# No index is 2^63 bytes or entries long; larger announcements would also overflow the job store's SQLite INTEGER.
MAX_INDEX_COUNT = 2**63 - 1


def _check_index_sizes(info: pb.HolderInfo) -> None:
    """Refuse a GetInfo whose index sizes are impossible, before they are logged or stored."""
    for index in info.indexes:
        if index.size_bytes > MAX_INDEX_COUNT or index.entries > MAX_INDEX_COUNT:
            raise HolderError(f"GetInfo: the holder announced an impossible index ({index.size_bytes} bytes, "
                              f"{index.entries} entries, more than {MAX_INDEX_COUNT})")


def _check_closed(session: RequesterSession, closed: Closed, holder_audit_key: bytes) -> None:
    """The holder's Closed must carry its audit signature over our transcript hash, and its
    checkpoint signed by the same key (SPEC.md 10.4.1)."""
    if closed.signer_key != holder_audit_key:
        raise ProtocolError(Reason.TRANSCRIPT_MISMATCH, "Closed is not signed with the holder's announced audit key")
    if not verify_transcript_signature(holder_audit_key, session.session_id, session.transcript_hash, closed.signature):
        raise ProtocolError(Reason.TRANSCRIPT_MISMATCH, "the holder's signature does not cover this session's transcript")
    try:
        verify_peer_note(closed.checkpoint_note, holder_audit_key)
    except CheckpointError as exc:
        raise ProtocolError(Reason.BAD_REQUEST, f"the checkpoint in the holder's Closed: {exc}") from None
