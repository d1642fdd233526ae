"""``holder.toml``: the holder daemon's configuration.

Loading is strict for the same reason as the policy file: a misspelt limit or TLS
key must stop the daemon, not silently fall back to a default. Every error names the
key (``holder.limits.max_batch: ...``). Relative paths are relative to the TOML file's
directory, so a deployment directory can be moved as a whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blindmatch.audit.events import valid_origin
from blindmatch.audit.keeper import KeeperSettings, keeper_settings
from blindmatch.crypto.group import ELEMENT_BYTES
from blindmatch.crypto.shuffle import CHUNK_PROOF_BYTES, HEADER_BYTES, MAX_CHUNK, RECORD_BYTES
from blindmatch.holder.index_guard import IndexGuard
from blindmatch.identity import identity_problem
from blindmatch.normalize import SchemaError, SchemaSource, schema_source
from blindmatch.tomlfile import load_toml
from blindmatch.vocabulary import InputError
from blindmatch.witness.client import WitnessEndpoint, load_witness_endpoints

# Protobuf framing of one ElementBatch message: field tags, lengths, seq.
BATCH_MESSAGE_OVERHEAD = 64


def evaluated_batch_bytes(max_batch: int) -> int:
    """The largest Match message the holder sends for batches of ``max_batch`` elements.

    That is cardinality's batch 0: each element comes with its 288-byte record of the
    shuffle proof, and the batch with the proof's header and its chunk proof (SPEC.md 6.1).
    A membership batch (elements and one 64-byte proof) is smaller.
    """
    return max_batch * (ELEMENT_BYTES + RECORD_BYTES) + HEADER_BYTES + CHUNK_PROOF_BYTES + BATCH_MESSAGE_OVERHEAD


class ConfigError(InputError, ValueError):
    """holder.toml is unreadable or invalid; the message names the offending key."""


@dataclass(frozen=True)
class HolderLimits:
    # 2048: a cardinality batch with its shuffle proof (about 640 KiB) fits the 1 MiB messages.
    max_batch: int = 2048
    max_session_elements: int = 65_536
    max_message_bytes: int = 1_048_576
    index_chunk_bytes: int = 262_144
    max_concurrent_sessions: int = 16
    shutdown_grace_seconds: float = 30.0
    # Evaluations one OPRF key may make in all (SPEC.md 7.6, RFC 9497 section 7.2.3).
    key_evaluation_cap: int = 2**32
    # Fair use of the server's threads (SPEC.md 9.7): Match streams and index downloads
    # per peer organisation (downloads: at most their total less one, holder.capacity),
    # downloads in all, and how long a Match stream may be silent.
    max_sessions_per_organisation: int = 8
    max_concurrent_downloads: int = 4
    hello_timeout_seconds: float = 10.0
    idle_timeout_seconds: float = 60.0


@dataclass(frozen=True)
class TlsConfig:
    cert: Path
    key: Path
    client_ca: Path
    allowed_organisations: tuple[str, ...]


@dataclass(frozen=True)
class HolderNodeConfig:
    organisation: str
    listen: str
    key_file: Path
    index_dir: Path
    schema: SchemaSource | None  # a built-in schema's name or a file; None: the built-in default
    policy: Path
    budget_db: Path
    audit_dir: Path
    audit_origin: str
    limits: HolderLimits
    tls: TlsConfig
    audit_log: KeeperSettings = field(default_factory=KeeperSettings)
    witnesses: tuple[WitnessEndpoint, ...] = ()
    issuer: IssuerEndpoint | None = None
    metrics_listen: str | None = None  # [holder.metrics] listen: Prometheus /metrics, loopback only
    index_guard: IndexGuard = field(default_factory=IndexGuard)
    # The key's epoch schedule (SPEC.md 2.1): the daemon rotates its key and rebuilds its
    # indexes from ``records`` when an epoch of ``epoch_days`` days ends. None: rotation by hand.
    epoch_days: int | None = None
    # The records the daemon rebuilds from by itself: at the end of its key's epoch, and with
    # ``issuer`` at the end of each issuer epoch (SPEC.md 15.6). None: ``holder index`` only.
    records: Path | None = None
    # How long before an epoch (the key's or the issuer's) ends the next indexes are built
    # (unpublished until the end); None: ``holder.epoch_schedule.prebuild_lead``; 0: build only once it ended.
    epoch_lead_hours: int | None = None


@dataclass(frozen=True)
class IssuerEndpoint:
    """``[holder.issuer]``: build the index over the issuer's eligibility tokens (SPEC.md 15.5)."""

    address: str
    ca_cert: Path
    cert: Path
    key: Path
    public_key: bytes | None  # optional pin of the current epoch's issuer key


_HOLDER_KEYS = {
    "organisation", "listen", "key_file", "index_dir", "schema", "policy",
    "budget_db", "audit_dir", "audit_origin", "limits", "tls", "audit_log", "witness", "metrics", "index_guard",
    "issuer", "epoch_days", "records", "epoch_lead_hours",
}
_ISSUER_KEYS = {"address", "ca_cert", "cert", "key", "public_key"}
_TLS_KEYS = {"cert", "key", "client_ca", "allowed_organisations"}


def _check_keys(where: str, table: dict[str, Any], allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")


def _text(where: str, table: dict[str, Any], key: str, default: str | None = None) -> str:
    if key not in table:
        if default is None:
            raise ConfigError(f"{where}.{key}: missing")
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip() or "\x00" in value:  # NUL: no path or name has one
        raise ConfigError(f"{where}.{key}: must be a non-empty string")
    return value


def _path(base: Path, where: str, table: dict[str, Any], key: str, default: str | None = None) -> Path:
    return base / _text(where, table, key, default)


def _int(where: str, table: dict[str, Any], key: str, default: int, minimum: int = 1) -> int:
    value = table.get(key, default)
    if type(value) is not int or value < minimum:
        raise ConfigError(f"{where}.{key}: must be an integer >= {minimum}")
    return value


def _seconds(where: str, table: dict[str, Any], key: str, default: float, minimum: float) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{where}.{key}: must be a number >= {minimum:g}")
    return float(value)


def _listen(value: str, where: str = "holder.listen") -> str:
    if not re.fullmatch(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}", value) or int(value.rsplit(":", 1)[1]) > 65535:
        raise ConfigError(f"{where}: {value!r} is not HOST:PORT")
    return value


def default_audit_origin(organisation: str) -> str:
    """An audit origin (printable ASCII, no spaces or '+') derived from the organisation."""
    words = re.findall(r"[A-Za-z0-9.]+", organisation)
    return "holder/" + ("-".join(words) or "holder")


def _audit_origin(value: str) -> str:
    """Refused here, by the audit log's own rule, rather than when the daemon opens the log."""
    if not valid_origin(value):
        raise ConfigError(f"holder.audit_origin: {value!r} is not a valid audit origin (printable ASCII, no spaces or '+')")
    return value


def _limits(table: Any) -> HolderLimits:
    where = "holder.limits"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    defaults = HolderLimits()
    _check_keys(where, table, set(HolderLimits.__dataclass_fields__))
    limits = HolderLimits(
        max_batch=_int(where, table, "max_batch", defaults.max_batch),
        max_session_elements=_int(where, table, "max_session_elements", defaults.max_session_elements),
        max_message_bytes=_int(where, table, "max_message_bytes", defaults.max_message_bytes, 4096),
        index_chunk_bytes=_int(where, table, "index_chunk_bytes", defaults.index_chunk_bytes, 1024),
        max_concurrent_sessions=_int(where, table, "max_concurrent_sessions", defaults.max_concurrent_sessions, 8),
        key_evaluation_cap=_int(where, table, "key_evaluation_cap", defaults.key_evaluation_cap),
        shutdown_grace_seconds=_seconds(where, table, "shutdown_grace_seconds", defaults.shutdown_grace_seconds, 0),
        max_sessions_per_organisation=_int(where, table, "max_sessions_per_organisation",
                                           defaults.max_sessions_per_organisation),
        max_concurrent_downloads=_int(where, table, "max_concurrent_downloads", defaults.max_concurrent_downloads),
        hello_timeout_seconds=_seconds(where, table, "hello_timeout_seconds", defaults.hello_timeout_seconds, 0.1),
        idle_timeout_seconds=_seconds(where, table, "idle_timeout_seconds", defaults.idle_timeout_seconds, 0.1),
    )
    if limits.max_sessions_per_organisation > limits.max_concurrent_sessions:
        raise ConfigError(f"{where}.max_sessions_per_organisation: must not exceed max_concurrent_sessions")
    if limits.max_batch > MAX_CHUNK:
        raise ConfigError(f"{where}.max_batch: must be at most {MAX_CHUNK}: a cardinality batch is one chunk of the "
                          "shuffle proof, whose DLEQ proofs cover two elements per position (SPEC.md 6.1)")
    if evaluated_batch_bytes(limits.max_batch) > limits.max_message_bytes:
        raise ConfigError(
            f"{where}.max_batch: {limits.max_batch} elements do not fit in max_message_bytes ({limits.max_message_bytes}):"
            f" a cardinality batch of them with its shuffle proof is {evaluated_batch_bytes(limits.max_batch)} bytes;"
            " lower max_batch or raise max_message_bytes")
    if limits.index_chunk_bytes + BATCH_MESSAGE_OVERHEAD > limits.max_message_bytes:
        raise ConfigError(f"{where}.index_chunk_bytes: must be below max_message_bytes")
    return limits


def _tls(base: Path, table: Any) -> TlsConfig:
    where = "holder.tls"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: missing (the holder only serves over mutual TLS)")
    _check_keys(where, table, _TLS_KEYS)
    allowed = table.get("allowed_organisations")
    if not isinstance(allowed, list) or not allowed:
        raise ConfigError(f"{where}.allowed_organisations: must be a non-empty array of organisation names")
    for i, organisation in enumerate(allowed):
        # Each is written to the audit log as a session's peer: the log's identity rule applies.
        problem = identity_problem(organisation)
        if problem:
            raise ConfigError(f"{where}.allowed_organisations[{i}]: {problem}")
    return TlsConfig(
        cert=_path(base, where, table, "cert"),
        key=_path(base, where, table, "key"),
        client_ca=_path(base, where, table, "client_ca"),
        allowed_organisations=tuple(allowed),
    )


def _issuer(base: Path, table: Any) -> IssuerEndpoint | None:
    where = "holder.issuer"
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _check_keys(where, table, _ISSUER_KEYS)
    pin = table.get("public_key")
    if pin is not None and (not isinstance(pin, str) or not re.fullmatch(r"[0-9a-f]{64}", pin)):
        raise ConfigError(f"{where}.public_key: must be 64 lowercase hex digits")
    return IssuerEndpoint(
        address=_text(where, table, "address"),
        ca_cert=_path(base, where, table, "ca_cert"),
        cert=_path(base, where, table, "cert"),
        key=_path(base, where, table, "key"),
        public_key=None if pin is None else bytes.fromhex(pin),
    )


LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")


def _metrics(table: Any) -> str:
    """``[holder.metrics] listen``: the metrics carry organisations' names and budgets, so loopback only."""
    where = "holder.metrics"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _check_keys(where, table, {"listen"})
    listen = _listen(_text(where, table, "listen"), f"{where}.listen")
    if listen.rsplit(":", 1)[0] not in LOOPBACK_HOSTS:
        raise ConfigError(f"{where}.listen: must be a loopback address such as 127.0.0.1:9464")
    return listen


def load_holder_config(path: Path) -> HolderNodeConfig:
    """Parse and validate holder.toml; files it names are not opened here."""
    path = Path(path)
    data = load_toml(path, ConfigError)
    _check_keys("config", data, {"holder"})
    holder = data.get("holder")
    if not isinstance(holder, dict):
        raise ConfigError("holder: missing [holder] table")
    _check_keys("holder", holder, _HOLDER_KEYS)
    base = path.resolve().parent
    organisation = _text("holder", holder, "organisation")
    try:
        audit_log = keeper_settings(holder.get("audit_log", {}), "holder.audit_log")
        witnesses = load_witness_endpoints(holder.get("witness", []), base, "holder.witness")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return HolderNodeConfig(
        organisation=organisation,
        listen=_listen(_text("holder", holder, "listen", "127.0.0.1:50051")),
        key_file=_path(base, "holder", holder, "key_file", "oprf.key"),
        index_dir=_path(base, "holder", holder, "index_dir", "index"),
        schema=_schema(path, base, holder),
        policy=_path(base, "holder", holder, "policy"),
        budget_db=_path(base, "holder", holder, "budget_db", "state/budget.sqlite3"),
        audit_dir=_path(base, "holder", holder, "audit_dir", "."),
        audit_origin=_audit_origin(_text("holder", holder, "audit_origin", default_audit_origin(organisation))),
        limits=_limits(holder.get("limits", {})),
        tls=_tls(base, holder.get("tls")),
        audit_log=audit_log,
        witnesses=witnesses,
        issuer=_issuer(base, holder.get("issuer")),
        metrics_listen=_metrics(holder["metrics"]) if "metrics" in holder else None,
        index_guard=_index_guard(holder.get("index_guard", {})),
        **_epochs(base, holder),
    )


def _schema(path: Path, base: Path, holder: dict[str, Any]) -> SchemaSource | None:
    """``holder.schema``: a built-in schema's name (``"extended"``) or a schema file; None if absent."""
    if "schema" not in holder:
        return None
    try:
        return schema_source(_text("holder", holder, "schema"), base)
    except SchemaError as exc:
        raise ConfigError(f"{path}: holder.schema: {exc}") from None


def _epochs(base: Path, holder: dict[str, Any]) -> dict[str, Any]:
    """``epoch_days``, ``epoch_lead_hours`` and the ``records`` file the daemon rebuilds from by itself.

    The daemon rebuilds at the end of its key's epoch (``epoch_days``) and, with
    ``[holder.issuer]``, at the end of each issuer epoch: both need ``records``. With an
    issuer and no ``records`` the index is refreshed by hand (``holder index``) only.
    """
    issuer = "issuer" in holder
    if "epoch_days" not in holder:
        if "records" in holder and not issuer:
            raise ConfigError("holder.records: only used with holder.epoch_days (scheduled key rotation) or "
                              "[holder.issuer] (the index refreshed for each issuer epoch)")
        if "epoch_lead_hours" in holder and "records" not in holder:
            raise ConfigError("holder.epoch_lead_hours: only used with holder.epoch_days, or with holder.records "
                              "and [holder.issuer] (the index built ahead of the next epoch)")
        if "records" not in holder:
            return {}
        lead = _int("holder", holder, "epoch_lead_hours", 0, 0) if "epoch_lead_hours" in holder else None
        return {"records": _path(base, "holder", holder, "records"), "epoch_lead_hours": lead}
    if "records" not in holder:
        raise ConfigError("holder.records: missing; a scheduled rotation (holder.epoch_days) rebuilds the index from it")
    days = _int("holder", holder, "epoch_days", 0, 1)
    lead = _int("holder", holder, "epoch_lead_hours", 0, 0) if "epoch_lead_hours" in holder else None
    if lead is not None and lead >= days * 24:
        raise ConfigError(f"holder.epoch_lead_hours: must be shorter than the epoch ({days * 24} hours)")
    return {"epoch_days": days, "records": _path(base, "holder", holder, "records"), "epoch_lead_hours": lead}


def _index_guard(table: Any) -> IndexGuard:
    where = "holder.index_guard"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table")
    _check_keys(where, table, set(IndexGuard.__dataclass_fields__))
    defaults = IndexGuard()
    shares = {}
    for key in IndexGuard.__dataclass_fields__:
        value = table.get(key, getattr(defaults, key))
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ConfigError(f"{where}.{key}: must be a number from 0 to 1 (a share: 0.05 is 5 %)")
        shares[key] = float(value)
    return IndexGuard(**shares)
