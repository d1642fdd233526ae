"""``issuer.toml``: the issuer's configuration.

    [issuer]
    name = "court.example"              # printed in every token file it signs
    seed_file = "issuer.seed"           # the OPRF seed, mode 0600 ('blindmatch issuer keygen')
    signing_key = "issuer.key"          # Ed25519 PEM, mode 0600; issuer.key.pub is pinned by requesters
    state_dir = "state"                 # per-epoch issuance counts and blind-evaluation counts
    schema = "schema.toml"              # optional: a file, or a built-in name ("default", "extended")
    epoch_months = 1                    # epoch length: 1, 2, 3, 4, 6 or 12 months
    evaluate_ahead_hours = 72           # holders may prepare the next epoch's index this long before it starts
    max_addresses_per_person = 3        # distinct addresses one person may get tokens for, per epoch
    final_field = "order_status"        # the column that says whether the order is final ...
    final_value = "final"               # ... and the value that means it is (case-insensitive)
    case_field = "case_ref"             # the order's reference, in ORDERS.csv and in a linkage request
    listen = "127.0.0.1:50080"          # 'issuer serve' (loopback only in the pilot)

    [issuer.tls]                        # mutual TLS, TLS 1.3 only
    cert = "pki/court/server.crt"
    key = "pki/court/server.key"        # mode 0600
    client_ca = "pki/ca.crt"

    [[issuer.holder]]                   # one table per holder allowed blind evaluations
    organisation = "Tax Authority"      # O= of its client certificate
    records = 1000000                   # its declared record count
    margin = 0.05                       # it may evaluate records * tiers * (1 + margin) elements per epoch

Loading is strict: an unknown or misspelt key stops the issuer with an error naming it.
Relative paths are relative to the file's directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blindmatch.identity import identity_problem
from blindmatch.normalize import SchemaError, SchemaSource, schema_source
from blindmatch.tomlfile import StrictFields
from blindmatch.transport.tls import ServerTlsFiles
from blindmatch.vocabulary import InputError

_ISSUER_KEYS = {
    "name", "seed_file", "signing_key", "state_dir", "schema", "epoch_months", "evaluate_ahead_hours",
    "max_addresses_per_person", "final_field", "final_value", "case_field", "holder", "listen", "tls",
}
_HOLDER_KEYS = {"organisation", "records", "margin"}
DEFAULT_LISTEN = "127.0.0.1:50080"
# A holder's daemon prepares the next epoch's index from ``holder.epoch_lead_hours`` (a day
# by default) before the epoch starts: three days leave room for an issuer that was down.
DEFAULT_EVALUATE_AHEAD_HOURS = 72


class IssuerConfigError(InputError, ValueError):
    """issuer.toml is unreadable or invalid; the message names the offending key."""


_fields = StrictFields(IssuerConfigError)


@dataclass(frozen=True)
class HolderAllowance:
    """A holder organisation the issuer evaluates blind for, and how much it may ask per epoch."""

    organisation: str
    records: int
    margin: float


@dataclass(frozen=True)
class IssuerConfig:
    name: str
    seed_file: Path
    signing_key: Path
    state_dir: Path
    schema: SchemaSource | None = None  # a built-in schema's name or a file; None: the built-in default
    epoch_months: int = 1
    # How long before the next epoch starts its key is announced (GetEpoch) and configured
    # holders may have their records evaluated under it (their allowance of that epoch); 0: never.
    evaluate_ahead_hours: int = DEFAULT_EVALUATE_AHEAD_HOURS
    max_addresses_per_person: int = 3
    final_field: str = "order_status"
    final_value: str = "final"
    case_field: str = "case_ref"  # names the order a requester's row or linkage request is for (issuer/records.py)
    holders: tuple[HolderAllowance, ...] = ()
    listen: str = DEFAULT_LISTEN
    tls: ServerTlsFiles | None = None  # required by 'issuer serve' only

    def holder(self, organisation: str) -> HolderAllowance | None:
        return next((h for h in self.holders if h.organisation == organisation), None)


def audit_origin(config: IssuerConfig) -> str:
    """The origin line of the issuer's audit log checkpoints: ``issuer/<name>``."""
    return f"issuer/{config.name.replace(' ', '-')}"


def _holder(index: int, table: Any) -> HolderAllowance:
    where = f"issuer.holder[{index}]"
    _fields.check_keys(where, _fields.table(where, table), _HOLDER_KEYS)
    organisation = _fields.text(where, table, "organisation")
    problem = identity_problem(organisation)
    if problem:
        raise IssuerConfigError(f"{where}.organisation: {problem}")
    margin = table.get("margin", 0.05)
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin <= 1:
        raise IssuerConfigError(f"{where}.margin: must be a number between 0 and 1")
    return HolderAllowance(organisation, _fields.integer(where, table, "records", 0, 1), float(margin))


def _schema(path: Path, base: Path, table: dict[str, Any]) -> SchemaSource | None:
    """``issuer.schema``: a built-in schema's name (``"extended"``) or a schema file; None if absent."""
    if "schema" not in table:
        return None
    try:
        return schema_source(_fields.text("issuer", table, "schema"), base)
    except SchemaError as exc:
        raise IssuerConfigError(f"{path}: issuer.schema: {exc}") from None


def load_issuer_config(path: Path) -> IssuerConfig:
    table = _fields.load(path, "issuer")
    _fields.check_keys("issuer", table, _ISSUER_KEYS)
    base = Path(path).resolve().parent
    holders = table.get("holder", [])
    if not isinstance(holders, list):
        raise IssuerConfigError("issuer.holder: must be an array of tables ([[issuer.holder]])")
    parsed = tuple(_holder(i, h) for i, h in enumerate(holders))
    if len({h.organisation for h in parsed}) != len(parsed):
        raise IssuerConfigError("issuer.holder: an organisation appears more than once")
    months = _fields.integer("issuer", table, "epoch_months", 1, 1)
    if months > 12 or 12 % months:
        raise IssuerConfigError("issuer.epoch_months: must be 1, 2, 3, 4, 6 or 12")
    tls = table.get("tls")
    return IssuerConfig(
        name=_fields.text("issuer", table, "name"),
        seed_file=base / _fields.text("issuer", table, "seed_file"),
        signing_key=base / _fields.text("issuer", table, "signing_key"),
        state_dir=base / _fields.text("issuer", table, "state_dir", "state"),
        schema=_schema(path, base, table),
        epoch_months=months,
        evaluate_ahead_hours=_fields.integer("issuer", table, "evaluate_ahead_hours", DEFAULT_EVALUATE_AHEAD_HOURS, 0),
        max_addresses_per_person=_fields.integer("issuer", table, "max_addresses_per_person", 3, 1),
        final_field=_fields.text("issuer", table, "final_field", "order_status"),
        final_value=_fields.text("issuer", table, "final_value", "final"),
        case_field=_fields.text("issuer", table, "case_field", "case_ref"),
        holders=parsed,
        listen=_fields.listen("issuer.listen", _fields.text("issuer", table, "listen", DEFAULT_LISTEN)),
        tls=None if tls is None else ServerTlsFiles.from_table(_fields, base, "issuer.tls", tls),
    )
