"""``requester linkage-request QUERIES.csv --out REQUEST.csv``: ask the issuer to link new addresses.

The issuer gives tokens only for addresses its own records, or a request it approves,
link to a person under a final order (SPEC.md 15.7). After ``issuer issue --orders``
the requester's token file has no line for a row whose address the issuer's records do
not link. This command collects exactly those rows, the ones the requester itself
finds eligible (its own legal-basis check passes, the row is readable) but that have no
token, into a linkage request for the issuer's clerks (``issuer approve``).

The request carries only what the issuer needs to decide: the schema's name and address
fields, the order reference (``--case-field``), the legal-basis date, and ``queries_row``,
the row's number in QUERIES.csv, so both sides can speak of a row without repeating it.
It is written 0600, because it is personal data on its way to the issuer. The token file
is verified first (signature, schema, records digest), so a request is never made from
a token file of other records.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from blindmatch.csvrows import as_record, read_rows
from blindmatch.normalize import Schema
from blindmatch.requester.token_inputs import NO_TOKEN, load_tokens, prepare_token_elements
from blindmatch.vocabulary import InputError, Mode

QUERIES_ROW = "queries_row"


class LinkageRequestError(InputError, ValueError):
    """The linkage request cannot be prepared (no token file configured, no order reference column)."""


@dataclass
class LinkageRequest:
    rows: list[int] = field(default_factory=list)  # QUERIES.csv rows asked for, in order
    left_out: dict[str, int] = field(default_factory=dict)  # status -> rows not asked for (tokens, ineligible)

    def summary(self, out: Path) -> str:
        lines = [f"{len(self.rows)} rows without a token asked for in {out}"]
        lines += [f"  {status}: {count} rows not asked for" for status, count in sorted(self.left_out.items())]
        return "\n".join(lines)


def _write_private_csv(out: Path, header: list[str], rows: list[list[str]]) -> None:
    """Write ``out`` atomically, readable by its owner only."""
    tmp = out.with_name(f".{out.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prepare_linkage_request(queries: Path, tokens_path: Path, issuer_key: Path, schema: Schema, out: Path, *,
                            case_field: str = "case_ref", now: datetime | None = None) -> LinkageRequest:
    """Write ``out``: the rows of ``queries`` the requester finds eligible that have no token."""
    now = now or datetime.now(UTC)
    with read_rows(queries, LinkageRequestError) as rows:
        if case_field not in rows.header:
            raise LinkageRequestError(f"{queries}: no column {case_field!r}: the issuer finds each row's order by it")
    tokens = load_tokens(tokens_path, issuer_key, schema)
    _, statuses = prepare_token_elements(queries, tokens, schema, Mode.MEMBERSHIP, now.date(), now=now)
    request = LinkageRequest()
    for number, status, _ in statuses:
        if status == NO_TOKEN:
            request.rows.append(number)
        else:
            request.left_out[status] = request.left_out.get(status, 0) + 1
    wanted = set(request.rows)
    columns = [*schema.tier_fields, *([schema.basis_field] if schema.basis_field else []), case_field]
    picked: list[list[str]] = []
    with read_rows(queries, LinkageRequestError) as rows:
        for number, values in rows:
            if number in wanted:
                record = as_record(rows.header, values)
                picked.append([str(number), *(record.get(column, "") for column in columns)])
    _write_private_csv(out, [QUERIES_ROW, *columns], picked)
    return request
