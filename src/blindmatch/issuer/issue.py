"""``issuer issue ORDERS.csv --out TOKENS``: tokens for the eligible rows, offline.

Rows are numbered as the requester numbers QUERIES.csv (row 1 is the first non-blank
data row), because the requester runs its job on the same file and looks each row's
tokens up by that number. A token is RFC 9497 VOPRF Evaluate under the epoch's key over
each tier's match key (the requester's side of the schema). The audit entry of an
issuance holds counts, the epoch and the output file's digest, never a record.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.audit import AuditLog
from blindmatch.audit.keys import raw_public_key
from blindmatch.crypto import oprf
from blindmatch.crypto.batch import BatchEngine
from blindmatch.crypto.modes import VOPRF
from blindmatch.csvrows import as_record, more_values_than_columns, read_rows
from blindmatch.issuer.config import IssuerConfig, IssuerConfigError
from blindmatch.issuer.epochs import Epoch, epoch_key_pair
from blindmatch.issuer.keys import load_signing_key, read_seed
from blindmatch.issuer.rules import OVER_ADDRESS_CAP, AddressLedger, person_of, refusal
from blindmatch.issuer.tokenfile import TokenHeader, records_digest, render, write_token_file
from blindmatch.normalize import NormalizationError, Schema, resolve_schema
from blindmatch.vocabulary import InputError


class OrdersFileError(InputError, ValueError):
    """ORDERS.csv cannot be used as a whole (unreadable, missing column)."""


COLUMNS_REFUSAL = "invalid: columns"


@dataclass
class IssueReport:
    rows: int = 0
    issued: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    epoch: str = ""
    out: Path | None = None

    def summary(self) -> str:
        lines = [f"{self.rows} rows read, {self.issued} issued tokens for epoch {self.epoch} -> {self.out}"]
        lines += [f"  {reason}: {count} rows refused" for reason, count in sorted(self.refused.items())]
        return "\n".join(lines)


def issuer_schema(config: IssuerConfig) -> Schema:
    return resolve_schema(config.schema)


def audit_origin(config: IssuerConfig) -> str:
    return f"issuer/{config.name.replace(' ', '-')}"


def _rows(path: Path, needed: list[str]) -> Iterator[tuple[int, dict[str, str] | None]]:
    """``(row number, record)`` per non-blank row, numbered as the requester numbers QUERIES.csv
    (``blindmatch.csvrows``); ``None`` for a row with more values than columns."""
    with read_rows(path, OrdersFileError) as rows:
        missing = [name for name in needed if name not in rows.header]
        if missing:
            raise OrdersFileError(f"{path}: no column(s) {', '.join(missing)}")
        for number, values in rows:
            yield number, None if more_values_than_columns(rows.header, values) else as_record(rows.header, values)


def issue_tokens(
    orders: Path, config: IssuerConfig, out: Path, *, now: datetime | None = None, engine: BatchEngine | None = None
) -> IssueReport:
    """Apply the rules to every row of ``orders``, write the signed token file ``out``, audit it."""
    now = now or datetime.now(UTC)
    schema = issuer_schema(config)
    several = schema.several_keys_tiers("requester")
    if several:  # a row's token of such a tier would stand for only one of its keys
        raise IssuerConfigError(
            f"issuer.schema: schema {schema.name!r} gives a requester several keys in tier(s) {', '.join(several)}, "
            "but a token file carries one token per tier (SPEC 15.3); issue tokens under a schema without them"
        )
    epoch = Epoch.containing(now, config.epoch_months)
    seed = read_seed(config.seed_file)
    sk, pk = epoch_key_pair(seed, epoch)
    signing = load_signing_key(config.signing_key)
    ledger = AddressLedger(config.state_dir, epoch, seed, config.max_addresses_per_person)
    report = IssueReport(epoch=epoch.name, out=out)
    eligible: list[tuple[int, list[tuple[str, bytes]]]] = []
    needed = [*schema.tier_fields, *([schema.basis_field] if schema.basis_field else []), config.final_field]
    for number, record in _rows(orders, needed):
        report.rows += 1
        if record is None:  # the requester marks such a row invalid too, and never sends it
            report.refused[COLUMNS_REFUSAL] += 1
            continue
        reason = refusal(record, schema, config.final_field, config.final_value, now.date())
        try:
            keys = schema.match_keys(record, "requester", number) if reason is None else []
            if reason is None and not keys:
                reason = "no match key"
            elif reason is None and not ledger.admit(person_of(schema, record, number), keys[0][1]):
                reason = OVER_ADDRESS_CAP
        except NormalizationError as exc:
            reason = f"invalid: {exc.field}"
        if reason is not None:
            report.refused[reason] += 1
            continue
        eligible.append((number, keys))
    own_engine = engine is None
    engine = engine or BatchEngine()
    try:
        flat = [key for _, keys in eligible for _, key in keys]
        elements = engine.evaluate_elements_in_mode(VOPRF, sk, flat)
    finally:
        if own_engine:
            engine.close()
    tokens = iter(oprf.finalize_unblinded(key, elements[i * 32 : (i + 1) * 32]) for i, key in enumerate(flat))
    tiers = len(schema.tier_names())
    rows: list[tuple[int, list[bytes | None]]] = []
    for number, keys in eligible:
        row: list[bytes | None] = [None] * tiers
        for tier_name, _ in keys:
            row[schema.tier_rank[tier_name]] = next(tokens)
        rows.append((number, row))
    records = records_digest((number, [key for _, key in keys]) for number, keys in eligible)
    header = TokenHeader(config.name, epoch, pk, raw_public_key(signing), schema.fingerprint, tiers, len(rows), records)
    content = render(header, rows, signing)
    report.issued = len(rows)
    ledger.save()  # the address cap counts these tokens before anyone holds them
    with AuditLog.open(config.state_dir, audit_origin(config)) as log:  # audit before effect (issue 17)
        log.append("tokens_issued", epoch=epoch.name, rows=report.rows, issued=report.issued,
                   refused=report.rows - report.issued, file_sha256=hashlib.sha256(content).hexdigest())
    write_token_file(out, content)
    return report
