"""The holder's policy file: which officials of which organisation may ask, and limits.

The file is a legal instrument in machine form, so loading is strict: unknown keys
are errors (a misspelt limit must not silently vanish), every limit is explicit,
validity times need an explicit UTC offset, and every error names the offending key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blindmatch.identity import identity_problem
from blindmatch.policy.keys import OfficialKeyError, parse_public_key, read_public_key_file
from blindmatch.policy.request import MAX_SIGNATURES, MODES
from blindmatch.tomlfile import load_toml
from blindmatch.vocabulary import InputError


class PolicyError(InputError, ValueError):
    """The policy file is unreadable or invalid; the message names the offending key."""


# Smallest cardinality session when the policy does not set one. A count over one element
# *is* that element's membership; ten makes a single session's count say nothing about any
# one record and multiplies the budget cost of per-record probing by ten, while real
# cardinality jobs (hundreds of records and more) never notice it. It does not stop a
# requester padding with records it knows are absent: budgets and the audit log bound that
# (SPEC.md section 6).
DEFAULT_CARDINALITY_MIN_RECORDS = 10


@dataclass(frozen=True)
class Limits:
    """Record budgets. Day and 30-day windows are rolling (see BudgetStore).

    ``cardinality_min_records`` is a floor, not a budget: the fewest elements a
    cardinality-mode session may carry.
    """

    session_max_records: int
    org_day: int
    org_30d: int
    official_day: int
    official_30d: int
    cardinality_min_records: int = DEFAULT_CARDINALITY_MIN_RECORDS
    dual_control: DualControl | None = None


@dataclass(frozen=True)
class DualControl:
    """Above these sizes a session needs the signatures of ``officials`` distinct officials.

    ``session_records``: a session of more records; ``day_records``: a session that would
    take the organisation's rolling 24-hour total above this. ``None`` leaves a size unchecked.
    """

    officials: int
    session_records: int | None
    day_records: int | None

    def required(self, records: int, org_day_used: int) -> int:
        """How many distinct officials must sign a session of ``records`` now."""
        over_session = self.session_records is not None and records > self.session_records
        over_day = self.day_records is not None and org_day_used + records > self.day_records
        return self.officials if over_session or over_day else 1


DEFAULT_DUAL_CONTROL_OFFICIALS = 2
_DUAL_CONTROL_KEYS = ("dual_control_records", "dual_control_day_records", "dual_control_officials")


def _dual_control(where: str, table: dict[str, Any]) -> DualControl | None:
    """The organisation's optional dual-control sizes; ``None`` when it sets neither size."""
    if "dual_control_records" not in table and "dual_control_day_records" not in table:
        if "dual_control_officials" in table:
            raise PolicyError(f"{where}.dual_control_officials: needs dual_control_records or dual_control_day_records")
        return None
    officials = table.get("dual_control_officials", DEFAULT_DUAL_CONTROL_OFFICIALS)
    if type(officials) is not int or not 2 <= officials <= MAX_SIGNATURES:
        raise PolicyError(f"{where}.dual_control_officials: must be an integer in 2..{MAX_SIGNATURES}")
    session = table.get("dual_control_records")
    day = table.get("dual_control_day_records")
    return DualControl(
        officials=officials,
        session_records=None if session is None else _limit(f"{where}.dual_control_records", session),
        day_records=None if day is None else _limit(f"{where}.dual_control_day_records", day),
    )


@dataclass(frozen=True)
class Official:
    """A person the holder accepts requests from, on behalf of ``organisation``.

    ``day_records``/``thirty_day_records`` override the organisation's per-official
    limits for this person when set.
    """

    organisation: str
    name: str
    role: str
    public_key: bytes
    valid_from: datetime
    valid_until: datetime
    modes: frozenset[str]
    day_records: int | None = None
    thirty_day_records: int | None = None


_ORG_LIMIT_KEYS = {
    "session_max_records": "session_max_records",
    "day_records": "org_day",
    "thirty_day_records": "org_30d",
    "official_day_records": "official_day",
    "official_thirty_day_records": "official_30d",
}
_OFFICIAL_REQUIRED = ("name", "role", "valid_from", "valid_until", "modes")
_OFFICIAL_OPTIONAL = ("public_key", "public_key_file", "day_records", "thirty_day_records")


def _quote(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check_keys(where: str, table: dict[str, Any], allowed: set[str], required: tuple[str, ...]) -> None:
    for key in table:
        if key not in allowed:
            raise PolicyError(f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in table:
            raise PolicyError(f"{where}.{key}: missing")


def _limit(where: str, value: Any) -> int:
    if type(value) is not int or value < 0:
        raise PolicyError(f"{where}: must be a non-negative integer")
    return value


def _cardinality_min(where: str, table: dict[str, Any]) -> int:
    """The organisation's optional ``cardinality_min_records`` (at least 1; 1 means no floor)."""
    if "cardinality_min_records" not in table:
        return DEFAULT_CARDINALITY_MIN_RECORDS
    value = table["cardinality_min_records"]
    if type(value) is not int or value < 1:
        raise PolicyError(f"{where}.cardinality_min_records: must be an integer >= 1")
    return value


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{where}: must be a non-empty string")
    return value


def _identity(where: str, value: Any) -> str:
    """Organisation and official names go into every audit entry: same rule as there."""
    problem = identity_problem(value)
    if problem:
        raise PolicyError(f"{where}: {problem}")
    return str(value)


def _instant(where: str, value: Any) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise PolicyError(f"{where}: must be a date-time with a UTC offset, e.g. 2026-01-01T00:00:00Z")
    return value.astimezone(UTC)


class Policy:
    """Officials and limits per requesting organisation (keyed by mTLS identity)."""

    def __init__(self, limits: dict[str, Limits], officials: dict[str, list[Official]]) -> None:
        self._limits = limits
        self._officials = officials

    @classmethod
    def load(cls, path: Path) -> Policy:
        """Parse and validate a policy TOML file (format: SPEC, "Holder policy file")."""
        path = Path(path)
        data = load_toml(path, PolicyError, "policy file")
        _check_keys("policy", data, {"organisations"}, ("organisations",))
        organisations = data["organisations"]
        if not isinstance(organisations, dict) or not organisations:
            raise PolicyError("organisations: must contain at least one organisation table")
        limits: dict[str, Limits] = {}
        officials: dict[str, list[Official]] = {}
        seen_keys: dict[bytes, str] = {}
        for org_name, table in organisations.items():
            where = f"organisations.{_quote(org_name)}"
            _identity(where, org_name)
            if not isinstance(table, dict):
                raise PolicyError(f"{where}: must be a table")
            allowed = {*_ORG_LIMIT_KEYS, *_DUAL_CONTROL_KEYS, "cardinality_min_records", "officials"}
            _check_keys(where, table, allowed, tuple(_ORG_LIMIT_KEYS))
            limits[org_name] = Limits(
                **{field: _limit(f"{where}.{key}", table[key]) for key, field in _ORG_LIMIT_KEYS.items()},
                cardinality_min_records=_cardinality_min(where, table),
                dual_control=_dual_control(where, table),
            )
            entries = table.get("officials", [])
            if not isinstance(entries, list):
                raise PolicyError(f"{where}.officials: must be an array of tables ([[...officials]])")
            officials[org_name] = []
            for index, entry in enumerate(entries):
                official = _parse_official(f"{where}.officials[{index}]", org_name, entry, path)
                if any(o.name == official.name for o in officials[org_name]):
                    raise PolicyError(f"{where}.officials[{index}].name: duplicate official {official.name!r}")
                if official.public_key in seen_keys:
                    raise PolicyError(
                        f"{where}.officials[{index}].public_key: same key as {seen_keys[official.public_key]}; "
                        "each official needs their own key"
                    )
                seen_keys[official.public_key] = f"{org_name} / {official.name}"
                officials[org_name].append(official)
        return cls(limits, officials)

    def organisations(self) -> list[str]:
        return sorted(self._limits)

    def officials(self, organisation: str) -> list[Official]:
        return list(self._officials.get(organisation, ()))

    def find_official(self, organisation: str, name: str) -> Official | None:
        """The official ``name`` of ``organisation``, or None if not registered."""
        return next((o for o in self._officials.get(organisation, ()) if o.name == name), None)

    def officials_named(self, name: str) -> list[Official]:
        """Every official called ``name``, in any organisation."""
        return [o for org in self._officials.values() for o in org if o.name == name]

    def limits(self, organisation: str, official: str | None = None) -> Limits:
        """The organisation's limits, with ``official``'s personal overrides applied."""
        if organisation not in self._limits:
            raise KeyError(f"organisation {organisation!r} is not in the policy")
        limits = self._limits[organisation]
        person = self.find_official(organisation, official) if official is not None else None
        if person is None:
            return limits
        return Limits(
            session_max_records=limits.session_max_records,
            org_day=limits.org_day,
            org_30d=limits.org_30d,
            official_day=limits.official_day if person.day_records is None else person.day_records,
            official_30d=limits.official_30d if person.thirty_day_records is None else person.thirty_day_records,
            cardinality_min_records=limits.cardinality_min_records,
            dual_control=limits.dual_control,
        )


def _parse_official(where: str, organisation: str, entry: Any, policy_path: Path) -> Official:
    base_dir = policy_path.parent
    if not isinstance(entry, dict):
        raise PolicyError(f"{where}: must be a table")
    _check_keys(where, entry, {*_OFFICIAL_REQUIRED, *_OFFICIAL_OPTIONAL}, _OFFICIAL_REQUIRED)
    if ("public_key" in entry) == ("public_key_file" in entry):
        raise PolicyError(f"{where}: exactly one of public_key or public_key_file is required")
    try:
        if "public_key" in entry:
            public_key = parse_public_key(_text(f"{where}.public_key", entry["public_key"]))
        else:
            key_path = base_dir / _text(f"{where}.public_key_file", entry["public_key_file"])
            public_key = read_public_key_file(key_path)
    except OfficialKeyError as exc:
        key = "public_key" if "public_key" in entry else "public_key_file"
        raise PolicyError(f"{policy_path}: {where}.{key}: {exc} (official {entry.get('name')!r})") from None
    valid_from = _instant(f"{where}.valid_from", entry["valid_from"])
    valid_until = _instant(f"{where}.valid_until", entry["valid_until"])
    if valid_until <= valid_from:
        raise PolicyError(f"{where}.valid_until: must be after valid_from")
    modes = entry["modes"]
    if not isinstance(modes, list) or not modes:
        raise PolicyError(f"{where}.modes: must be a non-empty array of {', '.join(MODES)}")
    for mode in modes:
        if mode not in MODES:
            raise PolicyError(f"{where}.modes: unknown mode {mode!r} (known: {', '.join(MODES)})")
    return Official(
        organisation=organisation,
        name=_identity(f"{where}.name", entry["name"]),
        role=_identity(f"{where}.role", entry["role"]),
        public_key=public_key,
        valid_from=valid_from,
        valid_until=valid_until,
        modes=frozenset(modes),
        day_records=_limit(f"{where}.day_records", entry["day_records"]) if "day_records" in entry else None,
        thirty_day_records=(
            _limit(f"{where}.thirty_day_records", entry["thirty_day_records"])
            if "thirty_day_records" in entry
            else None
        ),
    )
