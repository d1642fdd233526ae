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

from blindmatch.normalize import address, date, house_numbers, name, name_forms
from blindmatch.normalize.errors import NormalizationError, SchemaError, SchemaMismatchError
from blindmatch.normalize.matchkey import KeyTooLongError, encode_key, fingerprint
from blindmatch.normalize.tables import TABLES
from blindmatch.tomlfile import load_toml

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
        **_house_range_views(a),
    }


def _house_range_views(a: address.Address) -> dict[str, View]:
    """The address with its house-number range written in full (empty: no range)."""
    full = house_numbers.full_range(a.house_number) if a.kind == "street" and "-" in a.house_number else ""
    return {"house_range": a.form(house=full) if full else ""}


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
        "one_deletion": name_forms.one_deletion(n),
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
# the views whose value is a set (one key per member): a tier reading one can give a record several keys
_SET_VIEWS: dict[str, frozenset[str]] = {
    "address": frozenset(v for v, value in _address_views("1 A ST, 00000", "").items() if isinstance(value, tuple)),
    "name": frozenset(v for v, value in _name_views("A B C", "").items() if isinstance(value, tuple)),
    "date": frozenset(),
}
_CONDITIONS = ("holder_requires_empty", "holder_requires_present", "requester_requires_empty", "requester_requires_present")


@dataclass(frozen=True)
class Tier:
    """One match tier: its parts, the views each side fills them from, when each side emits it.

    ``parts`` label the key's parts (and give both sides' views unless ``holder_parts`` or
    ``requester_parts`` override them); a side emits the tier only when its
    ``*_requires_empty`` views are empty and its ``*_requires_present`` views are not.
    ``confirms`` says whether a match at this tier confirms the person at the address, or
    is only a candidate for review. A tier with ``key_tier`` encodes its requester keys under
    that earlier tier's name, so they are looked up among that tier's holder keys, and the
    holder emits nothing of its own for it: the index stays smaller when the requester's
    looser form can only equal a holder's stricter one for a holder record lacking the part.
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
    key_tier: str = ""

    @property
    def key_name(self) -> str:
        """The tier name the keys are encoded under: ``key_tier`` when set, else the tier's own."""
        return self.key_tier or self.name

    def side_parts(self, side: str) -> tuple[str, ...]:
        """The views a side reads the parts from."""
        return (self.holder_parts if side == "holder" else self.requester_parts) or self.parts

    def refs(self) -> tuple[str, ...]:
        """Every view reference the tier reads."""
        return (*self.parts, *self.holder_parts, *self.requester_parts, *(r for c in _CONDITIONS for r in getattr(self, c)))

    def emitted_by(self, side: str, views: Mapping[str, Mapping[str, View]]) -> bool:
        """Whether ``side``'s record (its views) meets the tier's conditions for that side."""
        if side == "holder" and self.key_tier:
            return False
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
    return Tier(str(t["name"]), tuple(str(x) for x in t["parts"]), confirms=confirms, purpose=str(t.get("purpose", "")),
                key_tier=str(t.get("key_tier", "")), **lists)


def _split_ref(ref: str) -> tuple[str, str]:
    field, _, view = ref.partition(".")
    return field, view


def _optional(table: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    """``table[key]`` when it is a ``kind`` (bool is not an integer here), None when absent."""
    value = table.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise SchemaError(f"schema: basis.{key} must be {what}")
    return value


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
        if not isinstance(basis, Mapping):
            raise SchemaError("schema: basis must be a table")
        self.basis_field: str | None = _optional(basis, "field", str, "a string")
        self.basis_not_in_future: bool = bool(_optional(basis, "not_in_future", bool, "true or false"))
        self.basis_max_age_days: int | None = _optional(basis, "max_age_days", int, "an integer")
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
        self._validate_key_tiers()
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

    def _validate_key_tiers(self) -> None:
        """A ``key_tier`` names an earlier tier of its own (no chain) with the same part labels; no holder side."""
        earlier: dict[str, Tier] = {}
        for t in self.tiers:
            if t.key_tier:
                target = earlier.get(t.key_tier)
                if target is None or target.key_tier:
                    raise SchemaError(f"schema: tier {t.name!r}: key_tier must name an earlier tier without a key_tier")
                if target.parts != t.parts:
                    raise SchemaError(f"schema: tier {t.name!r}: key_tier {t.key_tier!r} has other parts")
                if t.holder_parts or t.holder_requires_empty or t.holder_requires_present:
                    raise SchemaError(f"schema: tier {t.name!r}: with key_tier the holder emits nothing, so no holder_* entries")
            earlier[t.name] = t

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
                    "key_tier": t.key_name,
                }
                for t in self.tiers
            ],
        }

    def several_keys_tiers(self, side: str) -> list[str]:
        """Tiers in which one record of ``side`` can give several keys (a part read from a set view).

        A token file carries one token per tier (SPEC 15.3), so eligibility tokens need none of them.
        """
        return [
            t.name for t in self.tiers
            if any(v in _SET_VIEWS[self.fields[f]] for f, v in map(_split_ref, t.side_parts(side)))
        ]

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
        gives one key per value, in sorted order; equal keys of one tier are sent once. A
        tier with ``key_tier`` gives the requester keys in that tier's key space, the holder none.
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
                key = self._encode_key(t, side, parts, row)
                if key not in seen:
                    seen.add(key)
                    keys.append((t.name, key))
        return keys

    def _encode_key(self, tier: Tier, side: str, parts: list[tuple[str, str]], row: int | None) -> bytes:
        """The key bytes; a key over the OPRF input limit is the record's error, naming its longest field."""
        try:
            return encode_key(self.name, self.version, tier.key_name, parts)
        except KeyTooLongError as exc:
            longest = max(zip(tier.side_parts(side), parts, strict=True), key=lambda p: len(p[1][1].encode()))[0]
            raise NormalizationError(_split_ref(longest)[0], f"too long ({exc})", row) from None

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
        return Schema(load_toml(Path(source), SchemaError, "schema"))
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"schema: not valid TOML: {exc}") from None
    return Schema(doc)


# The schemas shipped with the package (protocol/schemas/<name>.toml): "default" carries the
# confirmation tiers and the review tiers worth their cost; "extended" adds every other review
# tier, for a deployment that accepts a larger index and more elements per record.
BUILTIN_SCHEMAS = ("default", "extended")
_LOADED: dict[str, Schema] = {}


def builtin_schema(name: str) -> Schema:
    """A schema shipped with the package, by name (see ``BUILTIN_SCHEMAS``), loaded once."""
    if name not in BUILTIN_SCHEMAS:
        raise SchemaError(f"schema: no built-in schema {name!r} (built-in: {', '.join(BUILTIN_SCHEMAS)})")
    if name not in _LOADED:
        text = resources.files("blindmatch.normalize").joinpath(f"{name}_schema.toml").read_text("utf-8")
        _LOADED[name] = load_schema(text)
    return _LOADED[name]


def default_schema() -> Schema:
    """The built-in default schema (name, address; order_date as legal basis)."""
    return builtin_schema("default")


# What a config file's or the command line's ``schema`` value names: a built-in schema (by
# name) or a schema TOML file. Kept unloaded in configs, which open no file when parsed.
SchemaSource = str | Path


def schema_source(value: str, base: Path) -> SchemaSource:
    """The schema a ``schema = VALUE`` setting names: a built-in name, or a file relative to ``base``.

    A file of the built-in's name next to the config wins, so a deployment that kept its
    own ``default`` file keeps it. A value naming neither raises ``SchemaError``, so the
    config reports it when read rather than at the first build or job.
    """
    path = base / value
    if value in BUILTIN_SCHEMAS and not path.exists():
        return value
    if not path.is_file():
        raise SchemaError(f"{value!r} is neither a built-in schema ({', '.join(BUILTIN_SCHEMAS)}) "
                          f"nor a schema file (no file {path})")
    return path


def resolve_schema(source: SchemaSource | None) -> Schema:
    """The schema ``source`` (from ``schema_source``) names; the built-in default when None."""
    if source is None:
        return default_schema()
    if isinstance(source, Path):
        return load_schema(source)
    return builtin_schema(source)
