"""protocol/SPEC.md stays normative and language-neutral; how the reference does things lives
in protocol/IMPLEMENTATION.md.

SPEC must let someone write a compatible peer in another language, so its text may not lean
on this implementation: no ``blindmatch`` CLI commands, no SQLite, no ``.py`` files, no
Python modules or idioms. Fenced blocks whose info string says ``informative`` are exempt.
Section references into SPEC (from SPEC itself and from the rest of the repository) must
name sections that exist, so renumbering cannot silently break them.
"""

from __future__ import annotations

import argparse
import pkgutil
import re
from pathlib import Path

import pytest

import blindmatch
from blindmatch.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "protocol" / "SPEC.md"
IMPLEMENTATION = ROOT / "protocol" / "IMPLEMENTATION.md"

# blindmatch.v1 is also the protobuf package of the wire protocol (section 9), not only a module.
PYTHON_MODULES = sorted(m.name for m in pkgutil.iter_modules(blindmatch.__path__) if m.name not in {"v1", "__main__"})


def _cli_commands() -> list[str]:
    actions = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert actions, "the CLI has no sub-commands"
    return sorted(actions[0].choices)


FORBIDDEN: dict[str, re.Pattern[str]] = {
    "a blindmatch CLI command": re.compile(rf"\bblindmatch (?:{'|'.join(_cli_commands())})\b"),
    "SQLite": re.compile(r"sqlite|BEGIN IMMEDIATE|\bPRAGMA\b", re.I),
    "a .py file": re.compile(r"[\w/.-]+\.py\b"),
    "a file of the reference": re.compile(r"(?<![\w/])(?:src|tests|benchmarks)/|\b(?:holder|requester)\.toml\b"),
    "how the reference does it": re.compile(r"\breference (?:implementation|holder|requester)\b(?!.*IMPLEMENTATION\.md)"),
    "a Python module of the reference": re.compile(rf"\bblindmatch\.(?:{'|'.join(PYTHON_MODULES)})\b"),
    "Python": re.compile(r"\bpython\b|\bpytest\b|\bjson\.(?:dumps|loads)\b|__\w+__", re.I),
    "a Python exception class": re.compile(r"\b[A-Z]\w*Error\b"),
}

_QUOTED = re.compile(r'"[^"\n]*"')  # protocol constants such as "blindmatch audit entry v1\n"


def normative_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of SPEC's normative text: informative fenced blocks removed."""
    lines: list[tuple[int, str]] = []
    fence: str | None = None  # the info string of the open fenced block
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            fence = line[3:] if fence is None else None
            continue
        if fence is not None and "informative" in fence:
            continue
        lines.append((number, line))
    return lines


def violations(text: str) -> list[str]:
    found = []
    for number, line in normative_lines(text):
        unquoted = _QUOTED.sub('""', line)
        for what, pattern in FORBIDDEN.items():
            match = pattern.search(unquoted)
            if match:
                found.append(f"SPEC.md line {number}: {what} ({match.group(0)!r})")
    return found


def test_spec_is_free_of_implementation_details() -> None:
    problems = violations(SPEC.read_text(encoding="utf-8"))
    assert not problems, "move these to protocol/IMPLEMENTATION.md:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "line",
    [
        "Run `blindmatch audit verify DIR` to check a log.",
        "The holder keeps one SQLite database.",
        "The generator is `generate_core.py`.",
        "Implemented by `blindmatch.policy`.",
        "Serialised with Python `json.dumps(obj)`.",
        "The peer raises `SchemaMismatchError`.",
        "The built-in schema is `src/blindmatch/normalize/default_schema.toml`.",
        "`benchmarks/README.md` gives measured costs.",
        "`holder.toml` references a policy file.",
        "The reference requester pings every 20 s.",
    ],
)
def test_each_kind_of_implementation_detail_is_caught(line: str) -> None:
    assert violations(f"## 7. Section\n\n{line}\n")


def test_protocol_constants_and_informative_fences_pass() -> None:
    text = (
        '## 10. Audit\n\n    "blindmatch audit entry v1\\n" || origin\n\n'
        "```sh informative\nblindmatch audit verify DIR\n```\n"
    )
    assert violations(text) == []
    assert violations(text.replace("sh informative", "sh"))


def _spec_sections() -> set[str]:
    return set(re.findall(r"^#+ (\d+(?:\.\d+)*)\.? ", SPEC.read_text(encoding="utf-8"), re.M))


def test_section_references_inside_spec_exist() -> None:
    text = SPEC.read_text(encoding="utf-8")
    sections = _spec_sections()
    missing = []
    for match in re.finditer(r"(?:§ ?|\bsections? )(\d+(?:\.\d+)*)", text, re.I):
        if "RFC" in text[max(0, match.start() - 30):match.start()]:
            continue  # a section of an RFC, not of SPEC
        line = text.count("\n", 0, match.start()) + 1
        if match.group(1) not in sections:
            missing.append(f"SPEC.md line {line}: {match.group(0)}")
    assert not missing, "\n".join(missing)


_REPO_REFERENCE = re.compile(r"SPEC(?:\.md)?`?\)?,? \(?(?:section|§) ?(\d+(?:\.\d+)*)", re.I)


def _repository_texts() -> list[Path]:
    patterns = ("README.md", "protocol/IMPLEMENTATION.md", "docs/**/*.md", "benchmarks/**/*.md",
                "src/**/*.py", "tests/**/*.py", "proto/**/*.proto")
    return sorted({p for pattern in patterns for p in ROOT.glob(pattern) if p != Path(__file__).resolve()})


def test_references_to_spec_sections_from_the_repository_exist() -> None:
    sections = _spec_sections()
    missing = []
    for path in _repository_texts():
        text = path.read_text(encoding="utf-8")
        for match in _REPO_REFERENCE.finditer(text):
            if match.group(1) not in sections:
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    assert not missing, "\n".join(missing)


def test_implementation_notes_are_declared_informative_and_linked_from_spec() -> None:
    notes = IMPLEMENTATION.read_text(encoding="utf-8")
    assert "informative" in notes.split("\n\n", 2)[1].lower()
    assert "IMPLEMENTATION.md" in SPEC.read_text(encoding="utf-8")
