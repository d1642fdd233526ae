"""``blindmatch matchkeys`` and ``blindmatch explain``: the data stewards' local tools."""

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from blindmatch.cli import matchkeys
from blindmatch.cli.errors import CliError
from blindmatch.normalize import default_schema


def _csv(tmp_path: Path) -> Path:
    p = tmp_path / "records.csv"
    p.write_text('name,address\n"Bill Smith","2218 W Maple Ave Apt 4, Chicago IL 60612"\n"Ann Lee","nowhere"\n',
                 encoding="utf-8")
    return p


def test_matchkeys_json_one_object_per_row(tmp_path: Path) -> None:
    out = io.StringIO()
    rc = matchkeys.run(str(_csv(tmp_path)), "requester", default_schema(), True, out)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert rc == 1
    assert second == {"row": 2, "keys": [], "error": "row 2: address: no house number"}
    expected = default_schema().match_keys({"name": "Bill Smith", "address": "2218 W Maple Ave Apt 4, Chicago IL 60612"},
                                           "requester", 1)
    assert first["row"] == 1 and first["error"] is None
    assert [(k["tier"], k["key"]) for k in first["keys"]] == [(t, hashlib.sha256(k).hexdigest()) for t, k in expected]
    assert [k["confirms"] for k in first["keys"]][:2] == [True, True]
    assert first["keys"][-1] == {**first["keys"][-1], "tier": "nickname+address", "confirms": False}
    assert "SMITH" not in out.getvalue()  # hashes, not the plain key encoding


def test_matchkeys_sides_differ_and_bad_schema_is_one_line(tmp_path: Path) -> None:
    holder, requester = io.StringIO(), io.StringIO()
    matchkeys.run(str(_csv(tmp_path)), "holder", default_schema(), True, holder)
    matchkeys.run(str(_csv(tmp_path)), "requester", default_schema(), True, requester)
    assert holder.getvalue() != requester.getvalue()
    (tmp_path / "bad.toml").write_text("[schema\n", encoding="utf-8")
    with pytest.raises(CliError, match="not valid TOML"):
        matchkeys.load_schema_arg(str(tmp_path / "bad.toml"))


def test_schema_option_takes_a_built_in_name(tmp_path: Path) -> None:
    assert matchkeys.load_schema_arg("extended").name == "blindmatch-person-extended"
    done = _blindmatch("matchkeys", str(_csv(tmp_path)), "--side", "holder", "--schema", "extended", "--json")
    tiers = {k["tier"] for k in json.loads(done.stdout.splitlines()[0])["keys"]}
    assert "name-one-edit+address" in tiers and "name-sounds-alike+address" in tiers
    with pytest.raises(CliError, match="no-such"):
        matchkeys.load_schema_arg("no-such")


def _blindmatch(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blindmatch", *args], capture_output=True, text=True, timeout=60)


def test_help_says_it_is_a_local_tool() -> None:
    for command in ("matchkeys", "explain"):
        done = _blindmatch(command, "--help")
        assert done.returncode == 0
        assert "do not send" in " ".join(done.stdout.split())


def test_explain_names_the_tier_or_the_field() -> None:
    home = "2218 W Maple, Chicago IL 60612"
    done = _blindmatch("explain", json.dumps({"name": "Bill Smith", "address": home}),
                       json.dumps({"name": "William Smith", "address": home}), "--json")
    assert done.returncode == 0
    assert json.loads(done.stdout) == {"tier": "nickname+address", "confirms": False, "error": None,
                                       "differences": {"name": {"requester": "BILL SMITH", "holder": "WILLIAM SMITH"}}}
    apart = _blindmatch("explain", json.dumps({"name": "John Smith Jr", "address": home}),
                        json.dumps({"name": "John Smith Sr", "address": home}))
    assert apart.returncode == 1
    assert apart.stdout.splitlines() == ["no tier matches", "name: requester 'JOHN SMITH JR' / holder 'JOHN SMITH SR'"]
    bad = _blindmatch("explain", "not json", "{}")
    assert bad.returncode == 2 and "requester record is not a JSON object" in bad.stderr  # input errors exit 2
