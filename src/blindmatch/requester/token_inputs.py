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

A file whose signature, header or schema does not check, or whose records digest says
it was issued for other rows than QUERIES.csv's, is refused as a whole, naming the file;
so is, before anything is downloaded or sent, a file of another issuer epoch than the
holder's index (:class:`TokenEpoch`). The requester's own legal-basis check still runs first (a policy layer on top
of the cryptographic one); only the pilot's adversary turns it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from blindmatch.core.errors import ProtocolError
from blindmatch.issuer.keys import read_public_signing_key
from blindmatch.issuer.tokenfile import TokenFile, TokenFileError, read_token_file, records_digest
from blindmatch.normalize import NormalizationError, Schema
from blindmatch.requester.inputs import Elements, collect_elements
from blindmatch.vocabulary import Mode, Reason

NO_TOKEN = "ineligible: no token"
TOKEN_EXPIRED = "ineligible: token expired"
TOKEN_NOT_YET_VALID = "ineligible: token not yet valid"
TOKEN_INVALID = "invalid: token"


@dataclass(frozen=True)
class TokenEpoch:
    """The issuer epoch of a job's token file, which the holder's index must share."""

    path: Path
    epoch: str

    def check_index(self, index_epoch: str) -> None:
        """Refuse, naming the file and both epochs, an index built for another issuer epoch.

        Tokens of one epoch match nothing in an index of another, so a session would only
        spend budget; the check runs before anything is downloaded or sent.
        """
        if index_epoch != self.epoch:
            have = f"issuer epoch {index_epoch}" if index_epoch else "plain match keys (no issuer epoch)"
            raise ProtocolError(
                Reason.ISSUER_EPOCH_MISMATCH,
                f"{self.path}: the tokens are of issuer epoch {self.epoch}, but the holder's index is over {have}; "
                "ask the issuer for tokens of the holder's epoch, or wait for the holder's rebuild",
            )


class _RecordsBinding:
    """Recomputes the token file's ``records`` digest over the input's rows as they are read."""

    def __init__(self, tokens: TokenFile, schema: Schema) -> None:
        self._tokens, self._schema = tokens, schema
        self._wanted = tokens.line_rows
        self._rows: list[tuple[int, list[bytes]]] = []
        self._unreadable: int | None = None  # a row with a token line whose match keys cannot be computed

    def add(self, number: int, record: dict[str, str]) -> None:
        if number not in self._wanted:
            return
        try:
            self._rows.append((number, [key for _, key in self._schema.match_keys(record, "requester", number)]))
        except NormalizationError:
            self._unreadable = self._unreadable or number

    def check(self, queries: Path) -> None:
        where = self._tokens.path or "the token file"
        if self._unreadable is not None or len(self._rows) != len(self._wanted) or \
                records_digest(self._rows) != self._tokens.header.records:
            detail = f"row {self._unreadable} has a token line but no match key" if self._unreadable is not None \
                else f"{len(self._wanted)} rows have token lines, {len(self._rows)} of them are in {queries}"
            raise TokenFileError(
                f"{where}: issued for other records than {queries} (rows added, removed, reordered or edited since "
                f"it was issued: {detail}); ask the issuer for tokens of this file"
            )


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
    check_records: bool = True,
) -> tuple[Elements, list[tuple[int, str, int]]]:
    """Like :func:`requester.inputs.prepare_elements`, with each row's tokens as its elements.

    Cardinality mode sends each row's strongest tier once, and each distinct token once.
    ``check_basis=False`` and ``check_records=False`` exist only for the pilot's adversary,
    which shows that skipping the requester's own checks gains nothing. The records check
    refuses the whole file (:class:`TokenFileError`, naming both files) when it was issued
    for other records than ``path``: its tokens would be sent as other rows' tokens.
    """
    now = now or datetime.now(UTC)
    binding = _RecordsBinding(tokens, schema) if check_records else None

    def elements_of(number: int, record: dict[str, str]) -> list[tuple[int, bytes]] | str:
        if binding is not None:
            binding.add(number, record)
        reason = schema.check_basis(record, today) if check_basis else None
        status = f"ineligible: {reason}" if reason is not None else _row_status(tokens, number, now)
        if status is not None:
            return status
        return [(rank, token) for rank, token in enumerate(tokens.tokens[number]) if token is not None]

    collected = collect_elements(path, schema, mode, elements_of)
    if binding is not None:
        binding.check(path)
    return collected
