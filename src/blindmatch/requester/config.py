"""``requester.toml``: what the requester daemon and ``blindmatch requester match`` need.

Relative paths are relative to the file's directory, so a configuration folder can be
moved as a whole. Loading is strict (unknown keys are errors naming the key) because a
misspelt setting, e.g. of the official's key, must not silently fall back to a default.

Example::

    organisation = "Example County"      # informational; the mTLS certificate is the identity
    state_dir = "state"                  # job store, cached index, socket

    [holder]
    address = "127.0.0.1:7443"
    organisation = "Tax Authority"       # pinned: the O= its server certificate must carry
    oprf_public_key = "e2f2ae0a..."      # pinned: its OPRF public key of the current epoch (64 hex digits)
    audit_public_key = "3d4017c3..."     # pinned: its Ed25519 audit verifier key (64 hex digits)
    name = "Tax Authority"               # optional: the holder as the audit log names it
    ca_cert = "pki/ca.pem"
    cert = "pki/example-county.pem"
    key = "pki/example-county.key"
    server_name = "holder"               # optional: the name in the holder's certificate
    retry_seconds = 60                   # how long to wait for an unavailable holder
    batch_timeout_seconds = 120          # a session or download silent this long: holder unavailable

    [official]
    name = "Alice Clerk"                 # the official each request names (and who approves it)
    legal_basis = "Tax Administration Act s. 12"
    request_lifetime_seconds = 3600      # officials must approve a prepared job within this

    [matching]
    mode = "membership"                  # or "cardinality"
    schema = "schema.toml"               # optional: a file, or a built-in name ("default", "extended")
    batch_size = 1024
    window = 4                           # batches in flight per session
    session_max_records = 0              # 0: the holder's limit

    [audit]
    dir = "audit"
    origin = "requester.example-county"
    every_seconds = 60                   # optional: checkpoint cadence and witness retries
                                         # (audit.keeper.KeeperSettings)
    [[audit.witness]]                    # optional, repeatable: SPEC.md 14.7
    verifier_key = "witness.ig.example/w1+1a2b3c4d+BA..."
    address = "127.0.0.1:50070"
    ca = "pki/ca.pem"
    cert = "pki/example-county.pem"
    key = "pki/example-county.key"

    [service]
    listen = "unix"                      # unix:<state_dir>/requester.sock, mode 0600 (TCP is refused)
    max_parallel_jobs = 8

    [metrics]                            # optional: Prometheus metrics (loopback only)
    listen = "127.0.0.1:9465"
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blindmatch.audit.events import IDENT, TEXT
from blindmatch.audit.keeper import KeeperSettings, keeper_settings
from blindmatch.crypto.ed25519 import load_public_key_strict
from blindmatch.crypto.voprf import load_public_key
from blindmatch.normalize import SchemaError, SchemaSource, schema_source
from blindmatch.policy.authorize import MAX_LIFETIME
from blindmatch.tomlfile import load_toml
from blindmatch.vocabulary import InputError, Mode
from blindmatch.witness.client import WitnessEndpoint, load_witness_endpoints

_LOOPBACK = ("127.0.0.1:", "localhost:", "[::1]:")


class ConfigError(InputError, ValueError):
    """requester.toml is unreadable or invalid; the message names the file and key."""


@dataclass(frozen=True)
class HolderEndpoint:
    address: str
    name: str
    # The pinned holder (SPEC.md 9.1): a server of another organisation, OPRF key or audit
    # key is refused, whatever the CA signed.
    organisation: str
    oprf_public_key: bytes
    audit_public_key: bytes
    ca_cert: Path
    cert: Path
    key: Path
    server_name: str | None
    retry_seconds: float
    # A stalled holder (alive, connection open, no answers) must not hold a job forever.
    batch_timeout_seconds: float


@dataclass(frozen=True)
class OfficialConfig:
    """Whom the requests name; that official (and co-signers) approve them with their own keys."""

    name: str
    legal_basis: str
    request_lifetime_seconds: int


@dataclass(frozen=True)
class MatchingConfig:
    mode: Mode
    schema: SchemaSource | None  # a built-in schema's name or a file; None: the built-in default
    batch_size: int
    window: int
    session_max_records: int


@dataclass(frozen=True)
class EligibilityConfig:
    """Sessions on the issuer's tokens (SPEC.md 15.6): the pinned issuer key and where token files are."""

    issuer_key: Path
    tokens: Path | None  # None: QUERIES.csv's sibling ``<QUERIES.csv>.tokens``

    def tokens_for(self, queries: Path) -> Path:
        return self.tokens if self.tokens is not None else queries.with_name(queries.name + ".tokens")


@dataclass(frozen=True)
class RequesterConfig:
    path: Path
    organisation: str
    state_dir: Path
    holder: HolderEndpoint
    official: OfficialConfig
    matching: MatchingConfig
    audit_dir: Path
    audit_origin: str
    listen: str
    max_parallel_jobs: int
    audit_log: KeeperSettings = field(default_factory=KeeperSettings)
    witnesses: tuple[WitnessEndpoint, ...] = ()
    eligibility: EligibilityConfig | None = None
    metrics_listen: str | None = None  # [metrics] listen: Prometheus /metrics, loopback only

    @property
    def socket_path(self) -> Path:
        return self.state_dir / "requester.sock"

    @property
    def service_target(self) -> str:
        """The gRPC target of the local job service."""
        return f"unix:{self.socket_path}" if self.listen == "unix" else self.listen

    @property
    def store_path(self) -> Path:
        return self.state_dir / "jobs.sqlite"

    @property
    def index_dir(self) -> Path:
        return self.state_dir / "index"


_SECTIONS: dict[str, tuple[set[str], set[str]]] = {
    # section: (required keys, optional keys)
    "": ({"organisation", "holder", "official", "audit"}, {"state_dir", "matching", "service", "metrics", "eligibility"}),
    "eligibility": ({"issuer_key"}, {"tokens"}),
    "holder": ({"address", "organisation", "oprf_public_key", "audit_public_key", "ca_cert", "cert", "key"}, {"name", "server_name", "retry_seconds", "batch_timeout_seconds"}),
    "official": ({"name", "legal_basis"}, {"request_lifetime_seconds"}),
    "matching": (set(), {"mode", "schema", "batch_size", "window", "session_max_records"}),
    "audit": ({"dir", "origin"}, {"witness", *KeeperSettings.__dataclass_fields__}),
    "service": (set(), {"listen", "max_parallel_jobs"}),
    "metrics": ({"listen"}, set()),
}


class _Reader:
    """Typed access to one table, with errors naming ``file: section.key``."""

    def __init__(self, path: Path, section: str, table: Any) -> None:
        self.path, self.section = path, section
        if not isinstance(table, dict):
            raise self.error("", "must be a table")
        required, optional = _SECTIONS[section]
        for key in table:
            if key not in required | optional:
                raise self.error(key, f"unknown key (allowed: {', '.join(sorted(required | optional))})")
        for key in sorted(required - set(table)):
            raise self.error(key, "missing")
        self.table = table

    def error(self, key: str, problem: str) -> ConfigError:
        where = ".".join(p for p in (self.section, key) if p)
        return ConfigError(f"{self.path}: {where or 'top level'}: {problem}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str) or not value.strip() or "\x00" in value:  # NUL: no path or name has one
            raise self.error(key, "must be a non-empty string")
        return value

    def identity(self, key: str, default: str | None = None) -> str:
        """A name the audit log accepts as an identity (see ``audit.events.IDENT``)."""
        value = self.text(key, default)
        problem = IDENT.check(value)
        if problem:
            raise self.error(key, problem)
        return value

    def legal_text(self, key: str) -> str:
        """Free text that goes into the signed request and the audit log (both bound its size)."""
        value = self.text(key)
        problem = TEXT.check(value)
        if problem:
            raise self.error(key, problem)
        return value

    def public_key(self, key: str, check: Callable[[bytes], object]) -> bytes:
        """A pinned 32-byte public key in hex; ``check`` raises ValueError for an invalid key."""
        text = self.text(key)
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise self.error(key, "must be 64 hexadecimal digits") from None
        if len(value) != 32:
            raise self.error(key, f"must be 32 bytes (64 hexadecimal digits), not {len(value)}")
        try:
            check(value)
        except ValueError as exc:
            raise self.error(key, f"is not a valid public key ({exc})") from None
        return value

    def schema(self, key: str) -> SchemaSource:
        """A built-in schema's name (``"extended"``) or a schema file relative to the config."""
        try:
            return schema_source(self.text(key), self.path.parent.resolve())
        except SchemaError as exc:
            raise self.error(key, str(exc)) from None

    def path_value(self, key: str, default: str | None = None) -> Path:
        return (self.path.parent / self.text(key, default)).resolve()

    def integer(self, key: str, default: int, minimum: int, maximum: int = 2**63 - 1) -> int:
        value = self.table.get(key, default)
        if type(value) is not int or not minimum <= value <= maximum:
            raise self.error(key, f"must be an integer in {minimum}..{maximum}")
        return value

    def positive(self, key: str, default: float) -> float:
        value = self.number(key, default)
        if value <= 0:
            raise self.error(key, "must be a positive number")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.table.get(key, default)
        if type(value) not in (int, float) or value < 0:
            raise self.error(key, "must be a non-negative number")
        return float(value)


def _ed25519_key(raw: bytes) -> object:
    return load_public_key_strict(raw, what="audit public key")


def _refuse_daemon_signing(path: Path, official: Any) -> None:
    """``[official] key_file`` (the daemon signing every session by itself) was removed:
    no official's private key belongs in a daemon. Say what to do instead."""
    if isinstance(official, dict) and "key_file" in official:
        raise ConfigError(
            f"{path}: official.key_file is no longer supported: the requester daemon signs nothing and must hold "
            "no official's private key. Remove key_file (and the key from the daemon's directory); the daemon "
            "prepares each job and waits, and officials approve it with their own encrypted key: "
            f"`blindmatch official approve JOB --config {path} --key THEIR.key` (or --official-config for a "
            "PKCS#11 token); `blindmatch official keygen` creates an encrypted key"
        )


def load_requester_config(path: Path) -> RequesterConfig:
    """Parse and validate ``requester.toml``."""
    path = Path(path).resolve()
    data = load_toml(path, ConfigError)
    top = _Reader(path, "", data)
    holder = _Reader(path, "holder", data["holder"])
    _refuse_daemon_signing(path, data["official"])
    official = _Reader(path, "official", data["official"])
    matching = _Reader(path, "matching", data.get("matching", {}))
    audit = _Reader(path, "audit", data["audit"])
    service = _Reader(path, "service", data.get("service", {}))
    eligibility = _Reader(path, "eligibility", data["eligibility"]) if "eligibility" in data else None

    mode_text = matching.text("mode", Mode.MEMBERSHIP.value)
    if mode_text not in {m.value for m in Mode}:
        raise matching.error("mode", f"must be one of {', '.join(m.value for m in Mode)}")
    try:
        keeper = keeper_settings({k: v for k, v in audit.table.items() if k in KeeperSettings.__dataclass_fields__},
                                 "audit")
        witnesses = load_witness_endpoints(audit.table.get("witness", []), path.parent, "audit.witness")
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    listen = service.text("listen", "unix")
    if listen != "unix":
        # The job service takes file paths and starts jobs officials then approve: on TCP any
        # local user could call it, and it has no client authentication to tell them apart.
        raise service.error(
            "listen", f'{listen!r}: a TCP job service would accept any local user (no client authentication); '
            'use "unix": a socket in the state directory, mode 0600',
        )
    metrics_listen = None
    if "metrics" in data:
        metrics = _Reader(path, "metrics", data["metrics"])
        metrics_listen = metrics.text("listen")
        if not metrics_listen.startswith(_LOOPBACK) or not metrics_listen.rsplit(":", 1)[1].isdigit():
            raise metrics.error("listen", 'must be a loopback address such as "127.0.0.1:9465"')
    return RequesterConfig(
        path=path,
        organisation=top.text("organisation"),
        state_dir=top.path_value("state_dir", "state"),
        holder=HolderEndpoint(
            address=holder.text("address"),
            name=holder.identity("name", holder.text("address")),
            organisation=holder.text("organisation"),
            oprf_public_key=holder.public_key("oprf_public_key", load_public_key),
            audit_public_key=holder.public_key("audit_public_key", _ed25519_key),
            ca_cert=holder.path_value("ca_cert"),
            cert=holder.path_value("cert"),
            key=holder.path_value("key"),
            server_name=holder.text("server_name") if "server_name" in holder.table else None,
            retry_seconds=holder.number("retry_seconds", 60.0),
            batch_timeout_seconds=holder.positive("batch_timeout_seconds", 120.0),
        ),
        official=OfficialConfig(
            name=official.identity("name"),
            legal_basis=official.legal_text("legal_basis"),
            # The holder refuses requests living longer than policy.MAX_LIFETIME.
            request_lifetime_seconds=official.integer(
                "request_lifetime_seconds", 900, 60, int(MAX_LIFETIME.total_seconds())
            ),
        ),
        matching=MatchingConfig(
            mode=Mode(mode_text),
            schema=matching.schema("schema") if "schema" in matching.table else None,
            batch_size=matching.integer("batch_size", 1024, 1),
            window=matching.integer("window", 4, 1),
            session_max_records=matching.integer("session_max_records", 0, 0),
        ),
        audit_dir=audit.path_value("dir"),
        audit_origin=audit.text("origin"),
        listen=listen,
        max_parallel_jobs=service.integer("max_parallel_jobs", 8, 1),
        audit_log=keeper,
        witnesses=witnesses,
        eligibility=None if eligibility is None else EligibilityConfig(
            issuer_key=eligibility.path_value("issuer_key"),
            tokens=eligibility.path_value("tokens") if "tokens" in eligibility.table else None,
        ),
        metrics_listen=metrics_listen,
    )
