"""SPEC.md section 10.2.2 and ``blindmatch.identity`` state the same identifier rule.

The rule is read from SPEC's machine-readable ``ident-rule`` block and its examples table,
rebuilt here as an independent checker, and compared with the implementation on the SPEC
examples, on boundary cases and on many generated strings, so that neither can change
without the other.
"""

from __future__ import annotations

import base64
import json
import random
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blindmatch.audit import AuditLog
from blindmatch.audit.events import validate_fields
from blindmatch.audit.verify import verify_log
from blindmatch.identity import IDENTITY_ASCII, IDENTITY_CATEGORIES, IDENTITY_MAX, identity_problem
from blindmatch.policy import Policy, PolicyError
from blindmatch.policy.request import TEXT_LIMITS

SPEC = Path(__file__).resolve().parents[2] / "protocol" / "SPEC.md"


def _section(text: str, number: str) -> str:
    """The body of the section whose heading starts with ``number`` up to the next heading."""
    match = re.search(rf"^#+ {re.escape(number)} .*?$(.*?)(?=^#+ \d)", text, re.M | re.S)
    assert match, f"SPEC.md has no section {number}"
    return match.group(1)


@dataclass(frozen=True)
class SpecRule:
    """The ``ident-rule`` block of SPEC.md section 10.2.2."""

    max_utf8_bytes: int
    normalization: str
    min_unicode_version: tuple[int, ...]
    separator: str
    categories: frozenset[str]
    ascii: frozenset[str]
    marks: frozenset[str]
    mark_follows: frozenset[str]

    def accepts(self, value: str) -> bool:
        """A plain reading of the rule, deliberately written apart from the implementation."""
        if not 1 <= len(value.encode("utf-8", "surrogatepass")) <= self.max_utf8_bytes:
            return False
        if unicodedata.normalize("NFC", value) != value:  # spec_rule() checked the form is NFC
            return False
        words = value.split(self.separator)
        if any(word == "" for word in words):
            return False
        previous = None
        for char in value:
            if char == self.separator:
                category = "separator"
            else:
                category = unicodedata.category(char)
                if char not in self.ascii and category not in self.categories:
                    return False
            if category in self.marks and (previous is None or previous not in self.mark_follows):
                return False
            previous = category
        return True


def _rule_block() -> dict[str, str]:
    body = _section(SPEC.read_text(encoding="utf-8"), "10.2.2")
    match = re.search(r"^```ident-rule\n(.*?)^```", body, re.M | re.S)
    assert match, "SPEC.md section 10.2.2 has no ```ident-rule block"
    pairs = [line.split(" = ", 1) for line in match.group(1).splitlines() if line.strip()]
    return {key.strip(): value.strip() for key, value in pairs}


def spec_rule() -> SpecRule:
    block = _rule_block()
    assert block["separator"] == "U+0020" and block["normalization"] == "NFC"
    return SpecRule(
        max_utf8_bytes=int(block["max_utf8_bytes"]),
        normalization=block["normalization"],
        min_unicode_version=tuple(int(part) for part in block["min_unicode_version"].split(".")),
        separator=" ",
        categories=frozenset(block["categories"].split()),
        ascii=frozenset(block["ascii"].split()),
        marks=frozenset(block["marks"].split()),
        mark_follows=frozenset(block["mark_follows"].split()),
    )


def spec_examples() -> list[tuple[str, bool]]:
    """(value, accepted) for every row of the examples table of section 10.2.2."""
    body = _section(SPEC.read_text(encoding="utf-8"), "10.2.2")
    rows = re.findall(r"^\| `(\".*\")` \| (accept|reject) \|", body, re.M)
    return [(json.loads(value), verdict == "accept") for value, verdict in rows]


RULE = spec_rule()
EXAMPLES = spec_examples()


def test_spec_rule_block_matches_the_implementation_constants() -> None:
    assert RULE.max_utf8_bytes == IDENTITY_MAX
    assert RULE.categories == IDENTITY_CATEGORIES
    assert RULE.ascii == IDENTITY_ASCII
    assert RULE.normalization == "NFC"
    assert RULE.marks == {"Mn", "Mc", "Me"} and RULE.marks <= RULE.categories
    assert RULE.mark_follows == {c for c in RULE.categories if c[0] in "LM" or c == "Nd"}


def test_unicode_database_is_recent_enough() -> None:
    version = tuple(int(part) for part in unicodedata.unidata_version.split("."))
    assert version >= RULE.min_unicode_version


def test_spec_lists_enough_examples_of_both_verdicts() -> None:
    assert sum(ok for _, ok in EXAMPLES) >= 10
    assert sum(not ok for _, ok in EXAMPLES) >= 15


@pytest.mark.parametrize("value, accepted", EXAMPLES, ids=[json.dumps(v) for v, _ in EXAMPLES])
def test_spec_examples_get_the_spec_verdict(value: str, accepted: bool) -> None:
    assert RULE.accepts(value) is accepted, "SPEC's example table contradicts SPEC's own rule"
    problem = identity_problem(value)
    assert (problem is None) is accepted, problem


@pytest.mark.parametrize(
    "value, accepted",
    [
        ("a" * 128, True),
        ("a" * 129, False),
        ("é" * 64, True),  # 2 bytes each: the limit is in bytes, not characters
        ("a" + "é" * 64, False),
        ("a" * 124 + "大", True),
        ("a" * 126 + "大", False),
    ],
)
def test_length_limit_is_in_utf8_bytes(value: str, accepted: bool) -> None:
    assert RULE.accepts(value) is accepted
    assert (identity_problem(value) is None) is accepted


# Characters from every class the rule distinguishes, so random strings hit each branch.
_POOL = (
    "aZ09 é大ʻक\u0301\u0903\u20dd٣" + "".join(sorted(IDENTITY_ASCII))
    + "\"<>;!?*%$\u2019\t\n\r\x00\x7f\u00a0\u2003\u200b\u202e\u2028\u216b\u00bd\u212b\ue000\U000e0001\u0378\ud800"
)


def test_implementation_agrees_with_spec_rule_on_generated_strings() -> None:
    rng = random.Random(20261201)
    accepted = 0
    for _ in range(20000):
        value = "".join(rng.choice(_POOL) for _ in range(rng.randint(0, 6)))
        expected = RULE.accepts(value)
        assert (identity_problem(value) is None) is expected, ascii(value)
        accepted += expected
    assert 500 < accepted < 19500  # both verdicts are exercised


def test_problem_names_the_offending_character_without_quoting_the_value() -> None:
    problem = identity_problem('Alice "the clerk"')
    assert problem is not None and "U+0022" in problem and "clerk" not in problem
    assert identity_problem(7) == "must be a string"


def test_every_identity_fits_the_signed_request_and_the_audit_log() -> None:
    """An accepted name can be signed (SPEC 7.4.1) and logged (SPEC 10.2.1) unchanged."""
    for value, accepted in EXAMPLES:
        if not accepted:
            continue
        assert value.isprintable() and len(value.encode()) <= TEXT_LIMITS["official"]
        validate_fields(
            "budget_debited",
            dict(session_id="0f" * 16, organisation=value, official=value, records=1,
                 day_used=1, day_limit=2, month_used=1, month_limit=2),
        )


REAL_ORGANISATION = "O'Brien & Sons, Inc."
REAL_OFFICIAL = "José Núñez"


def test_real_names_pass_the_policy_and_the_audit_log_end_to_end(tmp_path: Path) -> None:
    """The callers of identity.py accept the names the rule allows, and refuse the others."""
    public_key = base64.b64encode(Ed25519PrivateKey.generate().public_key().public_bytes_raw()).decode()

    def policy_text(organisation: str, official: str) -> str:
        return (
            f"[organisations.{json.dumps(organisation)}]\n"
            "session_max_records = 10\nday_records = 10\nthirty_day_records = 10\n"
            "official_day_records = 10\nofficial_thirty_day_records = 10\n"
            f"[[organisations.{json.dumps(organisation)}.officials]]\n"
            f"name = {json.dumps(official)}\nrole = \"Clerk\"\npublic_key = \"{public_key}\"\n"
            "valid_from = 2026-01-01T00:00:00Z\nvalid_until = 2027-01-01T00:00:00Z\nmodes = [\"membership\"]\n"
        )

    path = tmp_path / "policy.toml"
    path.write_text(policy_text(REAL_ORGANISATION, REAL_OFFICIAL), encoding="utf-8")
    policy = Policy.load(path)
    assert [o.name for o in policy.officials(REAL_ORGANISATION)] == [REAL_OFFICIAL]
    path.write_text(policy_text(REAL_ORGANISATION, "Jose\u0301 Nu\u0301n\u0303ez"), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"officials\[0\]\.name: must be an identity.*NFC"):
        Policy.load(path)

    with AuditLog.open(tmp_path, "court.example/audit") as log:
        log.append("budget_debited", session_id="0f" * 16, organisation=REAL_ORGANISATION,
                   official=REAL_OFFICIAL, records=1, day_used=1, day_limit=10, month_used=1, month_limit=10)
        log.checkpoint()
    assert verify_log(tmp_path).ok
    assert REAL_OFFICIAL.encode() in (tmp_path / "audit" / "log.jsonl").read_bytes()  # UTF-8, not \u-escaped
