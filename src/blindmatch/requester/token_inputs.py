"""A job's elements from the issuer's token file instead of from its records (SPEC.md 15.6).

With ``[eligibility]`` in requester.toml, the requester does not compute match keys: it
sends, for each row of QUERIES.csv, the tokens the issuer signed for that row, blinded
exactly as keys are. Whatever the requester's own software does, a row the issuer gave
no token for cannot match, because the holder's index holds only the holder's OPRF over
the issuer's OPRF of its records. Rows are judged one by one, so one bad row never
stops the others:

- no token for the row: ``ineligible: no token``;
- the file's epoch does not cover now: ``ineligible: token expired`` or
  ``ineligible: token not yet valid``;
- the row's token line did not parse: ``invalid: token``.

A file whose signature, header or schema does not check is refused as a whole, naming
the file. The requester's own legal-basis check still runs first (a policy layer on top
of the cryptographic one); only the pilot's adversary turns it off.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from blindmatch.issuer.keys import read_public_signing_key
from blindmatch.issuer.tokenfile import TokenFile, TokenFileError, read_token_file
from blindmatch.normalize import Schema
from blindmatch.requester.inputs import Elements, collect_elements
from blindmatch.vocabulary import Mode

NO_TOKEN = "ineligible: no token"
TOKEN_EXPIRED = "ineligible: token expired"
TOKEN_NOT_YET_VALID = "ineligible: token not yet valid"
TOKEN_INVALID = "invalid: token"


def load_tokens(tokens_path: Path, issuer_key: Path, schema: Schema) -> TokenFile:
    """The verified token file, refused as a whole when it is not for this schema."""
    tokens = read_token_file(tokens_path, read_public_signing_key(issuer_key))
    if tokens.header.schema != schema.fingerprint:
        raise TokenFileError(f"{tokens_path}: tokens were issued for another schema than this requester's")
    if tokens.header.tiers != len(schema.tier_names()):
        raise TokenFileError(f"{tokens_path}: tokens have {tokens.header.tiers} tiers, the schema {len(schema.tier_names())}")
    return tokens


def _row_status(tokens: TokenFile, row: int, now: datetime) -> str | None:
    if row in tokens.bad_rows:
        return TOKEN_INVALID
    if row not in tokens.tokens:
        return NO_TOKEN
    if now >= tokens.header.epoch.expires:
        return TOKEN_EXPIRED
    if now < tokens.header.epoch.not_before:
        return TOKEN_NOT_YET_VALID
    return None


def prepare_token_elements(
    path: Path,
    tokens: TokenFile,
    schema: Schema,
    mode: Mode,
    today: date,
    *,
    now: datetime | None = None,
    check_basis: bool = True,
) -> tuple[Elements, list[tuple[int, str, int]]]:
    """Like :func:`requester.inputs.prepare_elements`, with each row's tokens as its elements.

    Cardinality mode sends each row's strongest tier once, and each distinct token once.
    ``check_basis=False`` exists only for the pilot's adversary, which shows that
    skipping the requester's own check gains nothing.
    """
    now = now or datetime.now(UTC)

    def elements_of(number: int, record: dict[str, str]) -> list[tuple[int, bytes]] | str:
        reason = schema.check_basis(record, today) if check_basis else None
        status = f"ineligible: {reason}" if reason is not None else _row_status(tokens, number, now)
        if status is not None:
            return status
        return [(rank, token) for rank, token in enumerate(tokens.tokens[number]) if token is not None]

    return collect_elements(path, schema, mode, elements_of)
