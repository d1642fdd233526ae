"""Schemas: which fields a record has, how each is normalised, and the ordered match tiers.

Both peers load a schema and compare its fingerprint in the session hello; the
fingerprint covers the schema and the versions of the normalisers and their tables, so a
peer that would turn the same person into other bytes is refused before data flows.
"""

from __future__ import annotations

import datetime
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from blindmatch.normalize import address, date, name
from blindmatch.normalize.errors import NormalizationError, SchemaError, SchemaMismatchError
from blindmatch.normalize.matchkey import encode_key, fingerprint
from blindmatch.normalize.tables import TABLES


def _address_views(text: str, field: str) -> dict[str, str]:
    a = address.parse_address(text, field)
    return {"": a.canonical, "without_unit": a.without_unit, "unit": a.unit, "zip5": a.zip5}


def _name_views(text: str, field: str) -> dict[str, str]:
    return {"": name.normalize_name(text, field)}


def _date_views(text: str, field: str) -> dict[str, str]:
    return {"": date.normalize_date(text, field).isoformat()}


# normaliser -> (function giving every view of a value, the views it has)
NORMALIZERS: dict[str, tuple[Callable[[str, str], dict[str, str]], frozenset[str]]] = {
    "address": (_address_views, frozenset({"", "without_unit", "unit", "zip5"})),
    "name": (_name_views, frozenset({""})),
    "date": (_date_views, frozenset({""})),
}
NORMALIZER_VERSIONS: dict[str, Any] = {
    "algorithms": {
        "address": address.ALGORITHM_VERSION,
        "name": name.ALGORITHM_VERSION,
        "date": date.ALGORITHM_VERSION,
    },
    "tables_sha256": TABLES.digest,
}


@dataclass(frozen=True)
class Tier:
    """One match tier: its name, its parts (``field`` or ``field.view``) and holder conditions."""

    name: str
    parts: tuple[str, ...]
    holder_requires_empty: tuple[str, ...]


def _split_ref(ref: str) -> tuple[str, str]:
    field, _, view = ref.partition(".")
    return field, view


class Schema:
    """A validated schema; see ``default_schema.toml`` for the format."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        try:
            meta = doc["schema"]
            self.name: str = str(meta["name"])
            self.version: int = int(meta["version"])
            self.fields: dict[str, str] = {f: str(spec["normalizer"]) for f, spec in doc["fields"].items()}
            tiers_doc = doc["tiers"]
            self.tiers: tuple[Tier, ...] = tuple(
                Tier(str(t["name"]), tuple(t["parts"]), tuple(t.get("holder_requires_empty", ())))
                for t in tiers_doc
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"schema: missing or malformed entry {exc}") from None
        basis = doc.get("basis", {})
        self.basis_field: str | None = basis.get("field")
        self.basis_not_in_future: bool = bool(basis.get("not_in_future", False))
        self.basis_max_age_days: int | None = basis.get("max_age_days")
        self._validate()
        self.tier_fields: tuple[str, ...] = tuple(
            dict.fromkeys(_split_ref(r)[0] for t in self.tiers for r in (*t.parts, *t.holder_requires_empty))
        )
        self.fingerprint: bytes = fingerprint(self.canonical_doc(), NORMALIZER_VERSIONS)

    def _validate(self) -> None:
        if not self.tiers:
            raise SchemaError("schema: no match tiers")
        if self.version < 0 or self.version > 0xFFFFFFFF:
            raise SchemaError("schema: version must fit in 32 bits")
        for f, norm in self.fields.items():
            if norm not in NORMALIZERS:
                raise SchemaError(f"schema: field {f!r} has unknown normalizer {norm!r}")
        names = [t.name for t in self.tiers]
        if len(set(names)) != len(names):
            raise SchemaError("schema: tier names must be unique")
        for t in self.tiers:
            if not t.parts:
                raise SchemaError(f"schema: tier {t.name!r} has no parts")
            for ref in (*t.parts, *t.holder_requires_empty):
                field, view = _split_ref(ref)
                if field not in self.fields:
                    raise SchemaError(f"schema: tier {t.name!r} refers to unknown field {field!r}")
                if view not in NORMALIZERS[self.fields[field]][1]:
                    raise SchemaError(f"schema: tier {t.name!r}: {self.fields[field]} has no view {view!r}")
        if self.basis_field is not None:
            if self.fields.get(self.basis_field) != "date":
                raise SchemaError(f"schema: basis field {self.basis_field!r} must be a date field")
            if self.basis_field in {_split_ref(r)[0] for t in self.tiers for r in t.parts}:
                raise SchemaError("schema: the basis field must not be part of a match key")

    def canonical_doc(self) -> dict[str, Any]:
        """The schema's content with defaults filled in: what the fingerprint hashes."""
        return {
            "schema": {"name": self.name, "version": self.version},
            "fields": {f: {"normalizer": n} for f, n in self.fields.items()},
            "basis": {
                "field": self.basis_field,
                "not_in_future": self.basis_not_in_future,
                "max_age_days": self.basis_max_age_days,
            },
            "tiers": [
                {"name": t.name, "parts": list(t.parts), "holder_requires_empty": list(t.holder_requires_empty)}
                for t in self.tiers
            ],
        }

    def tier_names(self) -> list[str]:
        """Tier names, strongest first."""
        return [t.name for t in self.tiers]

    def normalize_record(self, record: Mapping[str, str], row: int | None = None) -> dict[str, dict[str, str]]:
        """Every view of every field the tiers use; raises :class:`NormalizationError` naming the field."""
        out: dict[str, dict[str, str]] = {}
        for f in self.tier_fields:
            value = record.get(f)
            if value is None or not str(value).strip():
                raise NormalizationError(f, "missing", row)
            try:
                out[f] = NORMALIZERS[self.fields[f]][0](value, f)
            except NormalizationError as exc:
                raise exc.with_context(f, row) from None
        return out

    def match_keys(
        self, record: Mapping[str, str], side: Literal["holder", "requester"], row: int | None = None
    ) -> list[tuple[str, bytes]]:
        """``[(tier name, key bytes), ...]`` strongest first.

        The holder emits a tier only when its ``holder_requires_empty`` views are empty
        (e.g. no unit): so a requester's unit-less key can only meet unit-less records.
        """
        if side not in ("holder", "requester"):
            raise ValueError(f"side must be 'holder' or 'requester', not {side!r}")
        views = self.normalize_record(record, row)
        keys: list[tuple[str, bytes]] = []
        for t in self.tiers:
            if side == "holder" and any(views[f][v] for f, v in map(_split_ref, t.holder_requires_empty)):
                continue
            parts = [(ref, views[f][v]) for ref in t.parts for f, v in (_split_ref(ref),)]
            keys.append((t.name, encode_key(self.name, self.version, t.name, parts)))
        return keys

    def check_basis(self, record: Mapping[str, str], today: datetime.date) -> str | None:
        """None when the record may be queried; otherwise a short reason naming the field."""
        f = self.basis_field
        if f is None:
            return None
        value = record.get(f)
        if value is None or not str(value).strip():
            return f"{f} missing"
        try:
            d = date.normalize_date(value, f)
        except NormalizationError:
            return f"{f} invalid"
        if self.basis_not_in_future and d > today:
            return f"{f} in the future"
        if self.basis_max_age_days is not None and (today - d).days > self.basis_max_age_days:
            return f"{f} older than {self.basis_max_age_days} days"
        return None

    def check_peer_fingerprint(self, peer_fingerprint: bytes) -> None:
        """Raise :class:`SchemaMismatchError` unless the peer's hello carried our fingerprint."""
        if bytes(peer_fingerprint) != self.fingerprint:
            raise SchemaMismatchError(
                f"schema fingerprint mismatch: local {self.name} v{self.version} "
                f"is {self.fingerprint.hex()[:16]}…, peer sent {bytes(peer_fingerprint).hex()[:16]}…; "
                "both sides must load the same schema and normaliser tables (blindmatch version) "
                "or no record could match"
            )


def load_schema(source: str | Path) -> Schema:
    """A schema from a TOML file path or from TOML text (text is anything containing a newline or ``[``)."""
    if isinstance(source, Path) or ("\n" not in source and "[" not in source):
        text = Path(source).read_text("utf-8")
    else:
        text = source
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"schema: not valid TOML: {exc}") from None
    return Schema(doc)


_DEFAULT: Schema | None = None


def default_schema() -> Schema:
    """The built-in schema (name, address; order_date as legal basis), loaded once."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = load_schema(resources.files("blindmatch.normalize").joinpath("default_schema.toml").read_text("utf-8"))
    return _DEFAULT
