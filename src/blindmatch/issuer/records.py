"""The issuer's own records (ORDERS.csv) as a linkage decision needs them, under keyed digests.

A requester's row, or a row of a linkage request, names the order it is for by the
``case_field`` column (``case_ref`` by default). The issuer then asks its own records
three things: is there such an order, does it qualify today (final, within the legal
basis: :func:`blindmatch.issuer.rules.refusal`), and is the row's person the order's
person (the normalised name fields, as the address cap counts them). An address is
*on record* for a person when one of the issuer's rows of that person has it, an address
being identified by its strongest requester-side match key (SPEC.md 15.7).

Only keyed digests (:class:`~blindmatch.issuer.rules.StateDigest`) are kept in memory
after a row is read, so the index of a large ORDERS.csv holds no name or address.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from blindmatch.csvrows import as_record, more_values_than_columns, read_rows
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.rules import StateDigest, person_of, refusal
from blindmatch.normalize import NormalizationError, Schema
from blindmatch.vocabulary import InputError

# Why a row is not linked to an order (the statuses of approval and issuance; causes only, no values).
UNKNOWN_ORDER = "no such order"
PERSON_DIFFERS = "person is not the order's"
AMBIGUOUS_ORDER = "order reference names two persons"
NOT_LINKED = "address not linked"
COLUMNS_REFUSAL = "invalid: columns"
NO_MATCH_KEY = "no match key"


class OrdersFileError(InputError, ValueError):
    """ORDERS.csv (or a file checked against it) cannot be used as a whole (unreadable, missing column)."""


def read_records(path: Path, needed: list[str]) -> Iterator[tuple[int, dict[str, str] | None]]:
    """``(row number, record)`` per non-blank row, numbered as the requester numbers QUERIES.csv
    (``blindmatch.csvrows``); ``None`` for a row with more values than columns."""
    with read_rows(path, OrdersFileError) as rows:
        missing = [name for name in needed if name not in rows.header]
        if missing:
            raise OrdersFileError(f"{path}: no column(s) {', '.join(missing)}")
        for number, values in rows:
            yield number, None if more_values_than_columns(rows.header, values) else as_record(rows.header, values)


def case_reference(record: Mapping[str, str], case_field: str) -> bytes:
    """The order reference as compared: trimmed and case-folded (``2024-cv-17`` is ``2024-CV-17``)."""
    return str(record.get(case_field, "")).strip().casefold().encode("utf-8")


@dataclass(frozen=True)
class LinkedRow:
    """One row of a requester's file, read for a linkage decision: its keys and keyed digests."""

    number: int
    keys: list[tuple[str, bytes]]  # requester-side match keys, strongest tier first
    person: bytes  # the normalised name fields (the address cap's person)
    person_digest: str
    address_digest: str  # of the strongest match key
    case_digest: str  # of the order reference; "" when the row names none


def linked_row(record: Mapping[str, str], number: int, schema: Schema, case_field: str,
               digest: StateDigest) -> LinkedRow | str:
    """The row's :class:`LinkedRow`, or why it cannot be read (``invalid: <field>``, no key)."""
    try:
        keys = schema.match_keys(record, "requester", number)
        person = person_of(schema, record, number)
    except NormalizationError as exc:
        return f"invalid: {exc.field}"
    if not keys:
        return NO_MATCH_KEY
    case = case_reference(record, case_field)
    return LinkedRow(number, keys, person, digest(person), digest(keys[0][1]), digest(case) if case else "")


@dataclass(frozen=True)
class Order:
    """An order of the issuer's records: its person (digest) and why it does not qualify (None: it does)."""

    person: str
    refusal: str | None


@dataclass
class IssuerRecords:
    """Orders by reference and addresses on record by person, all as keyed digests."""

    case_field: str
    orders: dict[str, Order] = field(default_factory=dict)
    addresses: dict[str, set[str]] = field(default_factory=dict)
    rows: int = 0
    unusable: int = 0  # rows of ORDERS.csv that link nothing (unreadable or without a match key)

    @classmethod
    def load(cls, path: Path, config: IssuerConfig, schema: Schema, today: date, digest: StateDigest) -> IssuerRecords:
        """Read ORDERS.csv once; each order judged as of ``today``."""
        records = cls(config.case_field)
        needed = [*schema.tier_fields, *([schema.basis_field] if schema.basis_field else []), config.final_field,
                  config.case_field]
        for number, record in read_records(path, needed):
            records.rows += 1
            row = COLUMNS_REFUSAL if record is None else linked_row(record, number, schema, config.case_field, digest)
            if isinstance(row, str) or record is None:
                records.unusable += 1
                continue
            records.addresses.setdefault(row.person_digest, set()).add(row.address_digest)
            if row.case_digest:
                records._add_order(row, refusal(record, schema, config.final_field, config.final_value, today))
        return records

    def _add_order(self, row: LinkedRow, why_not: str | None) -> None:
        known = self.orders.get(row.case_digest)
        if known is None:
            self.orders[row.case_digest] = Order(row.person_digest, why_not)
        elif known.person != row.person_digest:
            self.orders[row.case_digest] = Order(known.person, AMBIGUOUS_ORDER)
        elif known.refusal is not None and why_not is None:
            self.orders[row.case_digest] = Order(known.person, None)  # one qualifying row of the order suffices

    def order_problem(self, row: LinkedRow) -> str | None:
        """Why ``row`` is not for a qualifying order of its own person, or None."""
        if not row.case_digest:
            return f"invalid: {self.case_field}"
        order = self.orders.get(row.case_digest)
        if order is None:
            return UNKNOWN_ORDER
        if order.refusal is not None:
            return order.refusal
        return PERSON_DIFFERS if order.person != row.person_digest else None

    def on_record(self, row: LinkedRow) -> bool:
        return row.address_digest in self.addresses.get(row.person_digest, ())
