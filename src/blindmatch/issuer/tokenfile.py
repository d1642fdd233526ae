"""The eligibility token file: a versioned header, one line per record, one Ed25519 signature.

    blindmatch-eligibility-tokens v1
    issuer court.example
    epoch 2026-12
    not-before 2026-12-01T00:00:00Z
    expires 2027-01-01T00:00:00Z
    oprf-key <hex pkS of the epoch>
    signing-key <hex Ed25519 public key>
    schema <hex schema fingerprint>
    tiers 2
    rows 3
    records <hex SHA-256 over the rows' match keys: binds the file to the records it was issued for>
    1 <hex token tier 1> <hex token tier 2>     ("-" for a tier the record has no key in)
    ...
    signature <base64 Ed25519 signature>

The signature is over ``SIGNATURE_CONTEXT`` followed by every byte of the file before
the ``signature`` line, so one changed bit anywhere is refused, with the file's name.
A token line that does not parse is refused naming its row, and only that row. SPEC.md
section 15.4 defines the format normatively.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit.keys import raw_public_key
from blindmatch.crypto.ed25519 import verify_strict
from blindmatch.issuer.epochs import Epoch
from blindmatch.vocabulary import InputError

MAGIC = "blindmatch-eligibility-tokens v1"
SIGNATURE_CONTEXT = b"blindmatch eligibility tokens v1\x00"
TOKEN_BYTES = 64
HEADER_FIELDS = ("issuer", "epoch", "not-before", "expires", "oprf-key", "signing-key", "schema", "tiers", "rows",
                 "records")
RECORDS_CONTEXT = b"blindmatch eligibility records v1\x00"
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_HEX = re.compile(r"^[0-9a-f]+$")


def format_time(when: datetime) -> str:
    """The file's (and the issuer service's) UTC time format, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return when.strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    """The inverse of :func:`format_time`; ``ValueError`` when ``text`` is not of that form."""
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


class TokenFileError(InputError, ValueError):
    """The token file as a whole cannot be used (unreadable, malformed header, bad signature)."""


@dataclass(frozen=True)
class TokenHeader:
    issuer: str
    epoch: Epoch
    oprf_key: bytes
    signing_key: bytes
    schema: bytes
    tiers: int
    rows: int
    records: bytes  # records_digest of the rows the file has lines for (SPEC.md 15.4)

    def lines(self) -> list[str]:
        return [
            MAGIC,
            f"issuer {self.issuer}",
            f"epoch {self.epoch.name}",
            f"not-before {format_time(self.epoch.not_before)}",
            f"expires {format_time(self.epoch.expires)}",
            f"oprf-key {self.oprf_key.hex()}",
            f"signing-key {self.signing_key.hex()}",
            f"schema {self.schema.hex()}",
            f"tiers {self.tiers}",
            f"rows {self.rows}",
            f"records {self.records.hex()}",
        ]


def records_digest(rows: Iterable[tuple[int, Sequence[bytes]]]) -> bytes:
    """What ties a token file to its input: SHA-256 over each row's number and match keys.

    The issuer computes it over the rows it issues tokens for, the requester over the same
    rows of its own input; a file issued for other records (another file, rows reordered
    or edited since) differs, so its tokens are never sent as another row's. It reveals a
    record only to someone who guesses every row of the file at once.
    """
    digest = hashlib.sha256(RECORDS_CONTEXT)
    for row, keys in rows:
        digest.update(row.to_bytes(4, "big") + len(keys).to_bytes(2, "big"))
        for key in keys:
            digest.update(len(key).to_bytes(2, "big") + key)
    return digest.digest()


@dataclass
class TokenFile:
    """A verified token file: tokens by row, and the rows whose line did not parse (with why)."""

    header: TokenHeader
    tokens: dict[int, list[bytes | None]]  # one per tier, None where the record has no key of that tier
    bad_rows: dict[int, str] = field(default_factory=dict)
    path: Path | None = None  # where it was read from, for errors

    @property
    def line_rows(self) -> set[int]:
        """Every row the file has a line for, parsed or not: what ``header.records`` covers."""
        return set(self.tokens) | set(self.bad_rows)


ABSENT = "-"


def render(header: TokenHeader, rows: list[tuple[int, list[bytes | None]]], key: Ed25519PrivateKey) -> bytes:
    """The signed file: header, ``row token...`` lines in row order, signature line."""
    if raw_public_key(key) != header.signing_key:
        raise ValueError("the header's signing key is not the key that signs")
    lines = header.lines() + [
        " ".join([str(row), *(ABSENT if t is None else t.hex() for t in tokens)]) for row, tokens in rows
    ]
    body = ("\n".join(lines) + "\n").encode("ascii")
    signature = key.sign(SIGNATURE_CONTEXT + body)
    return body + f"signature {base64.b64encode(signature).decode('ascii')}\n".encode("ascii")


def write_token_file(path: Path, content: bytes) -> None:
    """Write atomically: a reader never sees half a file (which would fail its signature anyway)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed write leaves no partial copy behind (issue 17)
        raise


def _parse_time(path: Path, text: str, name: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise TokenFileError(f"{path}: header field {name!r} is not a UTC time YYYY-MM-DDTHH:MM:SSZ") from None


def _hex_field(path: Path, text: str, name: str, size: int) -> bytes:
    if len(text) != 2 * size or not _HEX.match(text):
        raise TokenFileError(f"{path}: header field {name!r} must be {size} bytes of lowercase hex")
    return bytes.fromhex(text)


def _parse_header(path: Path, lines: list[str]) -> TokenHeader:
    if not lines or lines[0] != MAGIC:
        raise TokenFileError(f"{path}: not a blindmatch token file (first line must be {MAGIC!r})")
    values: dict[str, str] = {}
    for expected, line in zip(HEADER_FIELDS, lines[1:], strict=False):
        name, _, value = line.partition(" ")
        if name != expected or not value:
            raise TokenFileError(f"{path}: header line {expected!r} missing or out of order")
        values[name] = value
    if len(values) != len(HEADER_FIELDS):
        raise TokenFileError(f"{path}: header is incomplete")
    try:
        epoch = Epoch(values["epoch"], _parse_time(path, values["not-before"], "not-before"),
                      _parse_time(path, values["expires"], "expires"))
        tiers, rows = int(values["tiers"]), int(values["rows"])
    except ValueError:
        raise TokenFileError(f"{path}: header fields 'tiers' and 'rows' must be integers") from None
    if tiers < 1 or rows < 0 or epoch.expires <= epoch.not_before:
        raise TokenFileError(f"{path}: header has no tiers, a negative row count or an empty validity period")
    return TokenHeader(values["issuer"], epoch, _hex_field(path, values["oprf-key"], "oprf-key", 32),
                       _hex_field(path, values["signing-key"], "signing-key", 32),
                       _hex_field(path, values["schema"], "schema", 32), tiers, rows,
                       _hex_field(path, values["records"], "records", 32))


def _parse_row(line: str, tiers: int) -> tuple[int, list[bytes | None] | str]:
    """``(row, tokens)`` or ``(row, why not)``; row 0 when even the row number does not parse."""
    parts = line.split(" ")
    row = int(parts[0]) if parts[0].isdigit() and parts[0][0] != "0" else 0
    if len(parts) != 1 + tiers:
        return row, f"{len(parts) - 1} tokens, expected {tiers}"
    if any(p != ABSENT and (len(p) != 2 * TOKEN_BYTES or not _HEX.match(p)) for p in parts[1:]):
        return row, f"a token is neither {TOKEN_BYTES} bytes of lowercase hex nor {ABSENT!r}"
    if all(p == ABSENT for p in parts[1:]):
        return row, "no token in any tier"
    return row, [None if p == ABSENT else bytes.fromhex(p) for p in parts[1:]]


def read_token_file(path: Path, signing_key: bytes) -> TokenFile:
    """Parse and verify ``path`` against the pinned issuer ``signing_key`` (raw Ed25519)."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc.strerror}") from None
    cut = content.rfind(b"\nsignature ")
    if cut < 0 or not content.endswith(b"\n"):
        raise TokenFileError(f"{path}: token file has no signature line (truncated?)")
    body, signature_line = content[: cut + 1], content[cut + 1 : -1]
    try:
        signature = base64.b64decode(signature_line[len(b"signature ") :], validate=True)
        text = body.decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        raise TokenFileError(f"{path}: token file signature is invalid (file damaged or altered)") from None
    if not verify_strict(signing_key, signature, SIGNATURE_CONTEXT + body):
        raise TokenFileError(f"{path}: token file signature is invalid (file damaged, altered or not signed by the pinned issuer key)")
    lines = text.split("\n")[:-1]
    header = _parse_header(path, lines)
    if header.signing_key != signing_key:
        raise TokenFileError(f"{path}: token file names a signing key other than the pinned issuer key")
    token_lines = lines[1 + len(HEADER_FIELDS) :]
    if len(token_lines) != header.rows:
        raise TokenFileError(f"{path}: header says {header.rows} rows, the file has {len(token_lines)}")
    result = TokenFile(header, {}, path=path)
    previous = 0
    for number, line in enumerate(token_lines, start=1):
        row, parsed = _parse_row(line, header.tiers)
        if row <= previous:
            raise TokenFileError(f"{path}: token line {number}: row numbers must be positive and increasing")
        previous = row
        if isinstance(parsed, str):
            result.bad_rows[row] = parsed
        else:
            result.tokens[row] = parsed
    return result
