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

from blindmatch.normalize import address, date, name, name_forms
from blindmatch.normalize.errors import NormalizationError, SchemaError, SchemaMismatchError
from blindmatch.normalize.matchkey import encode_key, fingerprint
from blindmatch.normalize.tables import TABLES

View = str | tuple[str, ...]


def _address_views(text: str, field: str) -> dict[str, View]:
    a = address.parse_address(text, field)
    return {
        "": a.canonical,
        "without_unit": a.without_unit,
        "unit": a.unit,
        "zip5": a.zip5,
        "street_type": a.suffix,
        "postdirectional": a.postdirectional,
        "no_street_type": a.form(suffix=False),
        "no_postdirectional": a.form(postdirectional=False),
        "by_city": a.form(place=f"{a.city} {a.state}") if a.city and a.state else "",
        "by_state": a.form(place=a.state) if a.state else "",
    }


def _name_views(text: str, field: str) -> dict[str, View]:
    n = name.parse_name(text, field)
    return {
        "": n.canonical,
        "nickname_query": name_forms.nickname_query(n),
        "nickname_forms": name_forms.nickname_forms(n),
        "joined": name_forms.joined(n),
        "sorted": name_forms.sorted_words(n),
        "one_word_less": name_forms.one_word_less(n),
        "middle_initials": name_forms.middle_initials(n),
        "phonetic": name_forms.phonetic(n),
    }


def _date_views(text: str, field: str) -> dict[str, View]:
    return {"": date.normalize_date(text, field).isoformat()}


# normaliser -> (function giving every view of a value, the views it has)
NORMALIZERS: dict[str, tuple[Callable[[str, str], dict[str, View]], frozenset[str]]] = {
    "address": (_address_views, frozenset(_address_views("1 A ST, 00000", "").keys())),
    "name": (_name_views, frozenset(_name_views("A B", "").keys())),
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
_CONDITIONS = ("holder_requires_empty", "holder_requires_present", "requester_requires_empty", "requester_requires_present")


@dataclass(frozen=True)
class Tier:
    """One match tier: its parts, the views each side fills them from, when each side emits it.

    ``parts`` label the key's parts (and give both sides' views unless ``holder_parts`` or
    ``requester_parts`` override them); a side emits the tier only when its
    ``*_requires_empty`` views are empty and its ``*_requires_present`` views are not.
    ``confirms`` says whether a match at this tier confirms the person at the address, or
    is only a candidate for review.
    """

    name: str
    parts: tuple[str, ...]
    holder_requires_empty: tuple[str, ...] = ()
    holder_requires_present: tuple[str, ...] = ()
    requester_requires_empty: tuple[str, ...] = ()
    requester_requires_present: tuple[str, ...] = ()
    holder_parts: tuple[str, ...] = ()
    requester_parts: tuple[str, ...] = ()
    confirms: bool = False
    purpose: str = ""

    def side_parts(self, side: str) -> tuple[str, ...]:
        """The views a side reads the parts from."""
        return (self.holder_parts if side == "holder" else self.requester_parts) or self.parts

    def refs(self) -> tuple[str, ...]:
        """Every view reference the tier reads."""
        return (*self.parts, *self.holder_parts, *self.requester_parts, *(r for c in _CONDITIONS for r in getattr(self, c)))

    def emitted_by(self, side: str, views: Mapping[str, Mapping[str, View]]) -> bool:
        """Whether ``side``'s record (its views) meets the tier's conditions for that side."""
        empty = getattr(self, f"{side}_requires_empty")
        present = getattr(self, f"{side}_requires_present")
        return not any(views[f][v] for f, v in map(_split_ref, empty)) and all(
            views[f][v] for f, v in map(_split_ref, present)
        )


def _tier_from_doc(t: Mapping[str, Any]) -> Tier:
    lists = {k: tuple(str(x) for x in t.get(k, ())) for k in (*_CONDITIONS, "holder_parts", "requester_parts")}
    confirms = t.get("confirms", False)
    if not isinstance(confirms, bool):
        raise SchemaError(f"schema: tier {t.get('name')!r}: confirms must be true or false")
    return Tier(str(t["name"]), tuple(str(x) for x in t["parts"]), confirms=confirms, purpose=str(t.get("purpose", "")), **lists)


def _split_ref(ref: str) -> tuple[str, str]:
    field, _, view = ref.partition(".")
    return field, view


def _values(view: View) -> tuple[str, ...]:
    return view if isinstance(view, tuple) else (view,)


class Schema:
    """A validated schema; see ``default_schema.toml`` for the format."""

    def __init__(self, doc: Mapping[str, Any]) -> None:
        try:
            meta = doc["schema"]
            self.name: str = str(meta["name"])
            self.version: int = int(meta["version"])
            self.fields: dict[str, str] = {f: str(spec["normalizer"]) for f, spec in doc["fields"].items()}
            tiers_doc = doc["tiers"]
            self.tiers: tuple[Tier, ...] = tuple(_tier_from_doc(t) for t in tiers_doc)
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"schema: missing or malformed entry {exc}") from None
        basis = doc.get("basis", {})
        self.basis_field: str | None = basis.get("field")
        self.basis_not_in_future: bool = bool(basis.get("not_in_future", False))
        self.basis_max_age_days: int | None = basis.get("max_age_days")
        self._validate()
        self.tier_fields: tuple[str, ...] = tuple(
            dict.fromkeys(_split_ref(r)[0] for t in self.tiers for r in t.refs())
        )
        self.tier_rank: dict[str, int] = {t.name: i for i, t in enumerate(self.tiers)}
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
            for side in ("holder", "requester"):
                if len(t.side_parts(side)) != len(t.parts):
                    raise SchemaError(f"schema: tier {t.name!r}: {side}_parts must have as many entries as parts")
            for ref in t.refs():
                field, view = _split_ref(ref)
                if field not in self.fields:
                    raise SchemaError(f"schema: tier {t.name!r} refers to unknown field {field!r}")
                if view not in NORMALIZERS[self.fields[field]][1]:
                    raise SchemaError(f"schema: tier {t.name!r}: {self.fields[field]} has no view {view!r}")
        if self.basis_field is not None:
            if self.fields.get(self.basis_field) != "date":
                raise SchemaError(f"schema: basis field {self.basis_field!r} must be a date field")
            if self.basis_field in {_split_ref(r)[0] for t in self.tiers for r in (*t.parts, *t.holder_parts, *t.requester_parts)}:
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
                {
                    "name": t.name,
                    "parts": list(t.parts),
                    **{c: list(getattr(t, c)) for c in _CONDITIONS},
                    "holder_parts": list(t.side_parts("holder")),
                    "requester_parts": list(t.side_parts("requester")),
                    "confirms": t.confirms,
                    "purpose": t.purpose,
                }
                for t in self.tiers
            ],
        }

    def tier_names(self) -> list[str]:
        """Tier names, strongest first."""
        return [t.name for t in self.tiers]

    def confirming_tiers(self) -> list[str]:
        """Names of the tiers whose match confirms the person at the address."""
        return [t.name for t in self.tiers if t.confirms]

    def normalize_record(self, record: Mapping[str, str], row: int | None = None) -> dict[str, dict[str, View]]:
        """Every view of every field the tiers use; raises :class:`NormalizationError` naming the field."""
        out: dict[str, dict[str, View]] = {}
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
        """``[(tier name, key bytes), ...]`` strongest tier first, for the tiers ``side`` emits.

        A tier whose view holds several values (nickname forms, names one word shorter)
        gives one key per value, in sorted order; equal keys of one tier are sent once.
        """
        if side not in ("holder", "requester"):
            raise ValueError(f"side must be 'holder' or 'requester', not {side!r}")
        views = self.normalize_record(record, row)
        keys: list[tuple[str, bytes]] = []
        for t in self.tiers:
            if not t.emitted_by(side, views):
                continue
            combos: list[list[tuple[str, str]]] = [[]]
            for label, ref in zip(t.parts, t.side_parts(side), strict=True):
                f, v = _split_ref(ref)
                combos = [[*c, (label, value)] for c in combos for value in _values(views[f][v])]
            seen: set[bytes] = set()
            for parts in combos:
                key = encode_key(self.name, self.version, t.name, parts)
                if key not in seen:
                    seen.add(key)
                    keys.append((t.name, key))
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
