"""``witness.toml``: the witness daemon's configuration.

    [witness]
    name = "witness.ig.example/w1"     # the key name in its cosignatures
    key_file = "witness.key"           # Ed25519 PKCS#8 PEM, mode 0600 ('blindmatch witness keygen')
    state_dir = "state"                # latest checkpoints, fork evidence, events ledger
    listen = "127.0.0.1:50070"

    [witness.tls]                      # mutual TLS, TLS 1.3 only
    cert = "pki/ig/server.crt"
    key = "pki/ig/server.key"          # mode 0600
    client_ca = "pki/ca.crt"

    [[witness.log]]                    # one table per witnessed log
    origin = "holder/Tax-Authority"    # the checkpoint origin line
    verifier_key = "holder/Tax-Authority+1a2b3c4d+AQ..."   # the log's audit.pub
    submitter = "Tax Authority"        # O= of the client certificate allowed to submit

Loading is strict, as for the other daemons: an unknown or misspelt key stops the
witness with an error naming it. Relative paths are relative to the file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blindmatch.audit.events import valid_origin
from blindmatch.audit.keys import AuditKeyError, parse_verifier_key
from blindmatch.identity import identity_problem
from blindmatch.tomlfile import StrictFields
from blindmatch.transport.tls import ServerTlsFiles

DEFAULT_LISTEN = "127.0.0.1:50070"


class WitnessConfigError(ValueError):
    """witness.toml is unreadable or invalid; the message names the offending key."""


_fields = StrictFields(WitnessConfigError)


@dataclass(frozen=True)
class WitnessedLog:
    origin: str
    public_key: bytes
    submitter: str


@dataclass(frozen=True)
class WitnessConfig:
    name: str
    key_file: Path
    state_dir: Path
    listen: str
    tls: ServerTlsFiles
    logs: tuple[WitnessedLog, ...]

    def log(self, origin: str) -> WitnessedLog | None:
        return next((entry for entry in self.logs if entry.origin == origin), None)


def _log(where: str, table: dict[str, Any]) -> WitnessedLog:
    _fields.check_keys(where, table, {"origin", "verifier_key", "submitter"})
    origin = _fields.text(where, table, "origin")
    if not valid_origin(origin):
        raise WitnessConfigError(f"{where}.origin: {origin!r} is not a log origin (printable ASCII, no spaces or '+')")
    try:
        name, public_key = parse_verifier_key(_fields.text(where, table, "verifier_key"))
    except AuditKeyError as exc:
        raise WitnessConfigError(f"{where}.verifier_key: {exc}") from None
    if name != origin:
        raise WitnessConfigError(f"{where}.verifier_key: names {name!r}, not the origin {origin!r}")
    submitter = _fields.text(where, table, "submitter")
    problem = identity_problem(submitter)
    if problem:
        raise WitnessConfigError(f"{where}.submitter: {problem}")
    return WitnessedLog(origin, public_key, submitter)


def load_witness_config(path: Path) -> WitnessConfig:
    """Parse and validate witness.toml; the files it names are opened by the daemon."""
    path = Path(path)
    witness = _fields.load(path, "witness")
    _fields.check_keys("witness", witness, {"name", "key_file", "state_dir", "listen", "tls", "log"})
    base = path.resolve().parent
    name = _fields.text("witness", witness, "name")
    if not valid_origin(name):
        raise WitnessConfigError(f"witness.name: {name!r} must be printable ASCII without spaces or '+'")
    entries = witness.get("log")
    if not isinstance(entries, list) or not entries:
        raise WitnessConfigError("witness.log: add at least one [[witness.log]] table")
    logs = tuple(_log(f"witness.log[{i}]", _fields.table(f"witness.log[{i}]", e)) for i, e in enumerate(entries))
    origins = [entry.origin for entry in logs]
    duplicate = next((o for o in origins if origins.count(o) > 1), None)
    if duplicate:
        raise WitnessConfigError(f"witness.log: origin {duplicate!r} is listed twice")
    return WitnessConfig(
        name=name,
        key_file=base / _fields.text("witness", witness, "key_file", "witness.key"),
        state_dir=base / _fields.text("witness", witness, "state_dir", "state"),
        listen=_fields.listen("witness.listen", _fields.text("witness", witness, "listen", DEFAULT_LISTEN)),
        tls=ServerTlsFiles.from_table(_fields, base, "witness.tls", witness.get("tls")),
        logs=logs,
    )
