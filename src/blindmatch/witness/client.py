"""The daemons' side of witnessing: submit the newest checkpoint to every witness.

Usage (the holder and requester daemons, after each checkpoint they write)::

    client = WitnessClient(load_witness_endpoints(table["witness"], base, "holder.witness"))
    cosignatures = client.submit(audit_log)          # raises WitnessSubmitError
    client.pending(audit_log)                        # witnesses yet to cosign the latest checkpoint

For each witness it sends the C2SP tlog-witness body with a consistency proof from the
size the witness last cosigned (known from ``audit/cosigned``, else 0), retries once
per size conflict with the size the witness returns, verifies the returned
cosignatures under the configured witness key, and appends the checkpoint note with
all cosignatures to ``audit/cosigned``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from blindmatch.audit.checkpoint import Checkpoint, CheckpointError, parse_checkpoint
from blindmatch.audit.cosignature import (
    Cosignature,
    WitnessKey,
    cosignatures_in,
    note_body,
    parse_witness_verifier_key,
    verify_cosignature_line,
)
from blindmatch.audit.cosigned import append_cosigned, cosigned_note, read_cosigned
from blindmatch.audit.keys import AuditKeyError
from blindmatch.audit.log import AuditLog
from blindmatch.keyfile import KeyFileError, read_private
from blindmatch.transport.retry import call_with_retry
from blindmatch.transport.status import reason_from_rpc_error
from blindmatch.v1 import witness_pb2 as pb
from blindmatch.v1 import witness_pb2_grpc as pb_grpc
from blindmatch.witness import protocol as p
from blindmatch.witness.service import MAX_MESSAGE_BYTES, SIZE_METADATA_KEY

MAX_CONFLICT_RETRIES = 2
DEFAULT_TIMEOUT_SECONDS = 10.0
# How long a busy or unreachable witness is retried (``transport.retry``) before it counts
# as a failure; short, because the caller retries at its next checkpoint anyway.
DEFAULT_RETRY_SECONDS = 3.0
_ENDPOINT_KEYS = {"verifier_key", "address", "ca", "cert", "key", "timeout_seconds"}


class WitnessError(Exception):
    """One witness did not cosign; ``status`` and ``reason`` say why (empty if unknown)."""

    def __init__(self, witness: str, message: str, status: str = "", reason: str = "") -> None:
        super().__init__(f"witness {witness}: {message}")
        self.witness = witness
        self.status = status
        self.reason = reason


class WitnessSubmitError(Exception):
    """Some witnesses did not cosign; the cosignatures that were obtained are stored anyway."""

    def __init__(self, failures: list[WitnessError], cosignatures: list[Cosignature]) -> None:
        super().__init__("; ".join(str(f) for f in failures))
        self.failures = failures
        self.cosignatures = cosignatures


@dataclass(frozen=True)
class WitnessEndpoint:
    """Where a witness listens, its public key, and the client TLS files to reach it."""

    key: WitnessKey
    address: str
    ca: Path
    cert: Path
    key_file: Path
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


def load_witness_endpoints(entries: Any, base: Path, where: str) -> tuple[WitnessEndpoint, ...]:
    """Parse an array of ``[[<role>.witness]]`` tables (paths relative to ``base``)."""
    if not isinstance(entries, list):
        raise ValueError(f"{where}: must be an array of tables")
    endpoints = []
    for i, table in enumerate(entries):
        here = f"{where}[{i}]"
        if not isinstance(table, dict):
            raise ValueError(f"{here}: must be a table")
        unknown = set(table) - _ENDPOINT_KEYS
        if unknown:
            raise ValueError(f"{here}.{sorted(unknown)[0]}: unknown key (allowed: {', '.join(sorted(_ENDPOINT_KEYS))})")
        for name in ("verifier_key", "address", "ca", "cert", "key"):
            if not isinstance(table.get(name), str) or not table[name]:
                raise ValueError(f"{here}.{name}: must be a non-empty string")
        try:
            key = parse_witness_verifier_key(table["verifier_key"])
        except AuditKeyError as exc:
            raise ValueError(f"{here}.verifier_key: {exc}") from None
        timeout = table.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"{here}.timeout_seconds: must be a number > 0")
        endpoints.append(WitnessEndpoint(key, table["address"], base / table["ca"], base / table["cert"],
                                         base / table["key"], float(timeout)))
    return tuple(endpoints)


def last_cosigned_size(log: AuditLog, witness: WitnessKey) -> int:
    """The largest size ``witness`` cosigned according to ``audit/cosigned`` (0 if none)."""
    size = 0
    notes, _ = read_cosigned(log.path)
    for note in notes:
        try:
            cp = parse_checkpoint(note, log.origin, log.public_key)
            if cosignatures_in(note, witness):
                size = max(size, cp.size)
        except (CheckpointError, ValueError):
            continue  # not ours or damaged: the witness's conflict answer corrects the guess
    return size


def _metadata(error: grpc.RpcError, key: str) -> str:
    trailing = error.trailing_metadata() if callable(getattr(error, "trailing_metadata", None)) else None
    for name, value in trailing or ():
        if name == key:
            return value.decode() if isinstance(value, bytes) else str(value)
    return ""


class WitnessClient:
    """Submits a log's checkpoints to the configured witnesses."""

    def __init__(self, endpoints: Sequence[WitnessEndpoint], retry_seconds: float = DEFAULT_RETRY_SECONDS) -> None:
        self.endpoints = tuple(endpoints)
        self.retry_seconds = retry_seconds

    def submit(self, log: AuditLog, checkpoint: Checkpoint | None = None) -> list[Cosignature]:
        """Get ``checkpoint`` (default: the log's newest) cosigned by every witness.

        Stores the note with every cosignature obtained in ``audit/cosigned``; raises
        :class:`WitnessSubmitError` if any witness refused or could not be reached.
        """
        cp = checkpoint or log.latest_checkpoint() or log.checkpoint()
        cosignatures: list[Cosignature] = []
        failures: list[WitnessError] = []
        for endpoint in self.endpoints:
            try:
                cosignatures.append(self._submit_one(endpoint, log, cp))
            except WitnessError as exc:
                failures.append(exc)
        if cosignatures:
            append_cosigned(log.path, cosigned_note(cp, cosignatures))
        if failures:
            raise WitnessSubmitError(failures, cosignatures)
        return cosignatures

    def pending(self, log: AuditLog) -> list[str]:
        """Names of the witnesses that have not cosigned the log's latest checkpoint yet (per
        ``audit/cosigned``), for status output: sessions never wait for a witness, the keeper
        retries in the background (SPEC 14.7, item 4)."""
        latest = log.latest_checkpoint()
        size = latest.size if latest else 0
        return [e.key.name for e in self.endpoints if latest is None or last_cosigned_size(log, e.key) < size]

    def _channel(self, endpoint: WitnessEndpoint) -> grpc.Channel:
        try:
            credentials = grpc.ssl_channel_credentials(
                endpoint.ca.read_bytes(), read_private(endpoint.key_file, what="TLS key file"), endpoint.cert.read_bytes())
        except KeyFileError as exc:
            raise WitnessError(endpoint.key.name, str(exc)) from None
        except OSError as exc:
            raise WitnessError(endpoint.key.name, f"cannot read a TLS file: {exc}") from None
        return grpc.secure_channel(endpoint.address, credentials, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])

    def _submit_one(self, endpoint: WitnessEndpoint, log: AuditLog, cp: Checkpoint) -> Cosignature:
        name = endpoint.key.name
        old = min(last_cosigned_size(log, endpoint.key), cp.size)
        with self._channel(endpoint) as channel:
            stub = pb_grpc.WitnessStub(channel)
            for _ in range(MAX_CONFLICT_RETRIES + 1):
                proof = log.consistency_proof(old, cp.size) if 0 < old < cp.size else []
                request = pb.AddCheckpointRequest(body=p.format_add_checkpoint(old, proof, cp.note))
                try:
                    response = call_with_retry(
                        lambda: stub.AddCheckpoint(request, timeout=endpoint.timeout_seconds),  # noqa: B023  # called at once
                        self.retry_seconds)
                except grpc.RpcError as error:
                    old = self._conflict_size(error, name, cp)
                    continue
                return self._verified(response.cosignatures, endpoint.key, cp)
        raise WitnessError(name, f"size conflicts persisted after {MAX_CONFLICT_RETRIES} retries", "ABORTED",
                           p.SIZE_CONFLICT)

    @staticmethod
    def _conflict_size(error: grpc.RpcError, name: str, cp: Checkpoint) -> int:
        """The size to retry with after a conflict; any other failure raises."""
        code = error.code() if callable(getattr(error, "code", None)) else grpc.StatusCode.UNKNOWN
        reason = reason_from_rpc_error(error)
        details = error.details() if callable(getattr(error, "details", None)) else ""
        if reason != p.SIZE_CONFLICT:
            raise WitnessError(name, f"{code.name}" + (f" ({details})" if details else ""), code.name, reason)
        size_text = _metadata(error, SIZE_METADATA_KEY)
        if not size_text.isdigit():
            raise WitnessError(name, "size conflict without the witness's size", code.name, reason)
        size = int(size_text)
        if size > cp.size:
            raise WitnessError(name, f"the witness already cosigned size {size}, more than this checkpoint's "
                               f"{cp.size}: this log was rolled back", code.name, reason)
        return size

    @staticmethod
    def _verified(lines: bytes, witness: WitnessKey, cp: Checkpoint) -> Cosignature:
        body = note_body(cp.note)
        for line in lines.decode(errors="replace").splitlines(keepends=True):
            try:
                cosignature = verify_cosignature_line(line, body, witness)
            except ValueError as exc:
                raise WitnessError(witness.name, f"returned a bad cosignature: {exc}") from None
            if cosignature is not None:
                return cosignature
        raise WitnessError(witness.name, "returned no cosignature by its configured key")
