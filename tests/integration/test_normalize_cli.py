"""``blindmatch normalize``: one output line per input line, warnings by line number."""

import argparse
import io
import json

from blindmatch.cli import normalize as cli


def _run(kind: str, text: str, as_json: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.run(kind, as_json, io.StringIO(text), out, err)
    return rc, out.getvalue(), err.getvalue()


def test_address_lines_in_order_with_blank_for_failures() -> None:
    rc, out, err = _run("address", "123 North Main St, Springfield IL 62704\nnot an address\n\nPO Box 5 Austin TX 78701")
    assert out.split("\n") == ["123 N MAIN ST, 62704", "", "", "PO BOX 5, 78701", ""]
    assert rc == 1
    assert err.splitlines() == [
        "blindmatch: warning: line 2: address: no house number",
        "blindmatch: warning: line 3: address: missing",
    ]
    assert "not an address" not in err


def test_name_and_date() -> None:
    assert _run("name", "Smith, John Jr.\r\n") == (0, "JOHN SMITH JR\n", "")
    rc, out, err = _run("date", "3/5/24\n2/30/2024\n")
    assert (rc, out) == (1, "2024-03-05\n\n")
    assert "line 2: date: day 30 does not exist in February 2024" in err


def test_json_components() -> None:
    _, out, _ = _run("address", "1 Main St Apt 2, Reno NV 89501-1234\n", as_json=True)
    parts = json.loads(out)
    assert parts["canonical"] == "1 MAIN ST # 2, 89501"
    assert (parts["unit"], parts["zip4"], parts["state"], parts["city"]) == ("2", "1234", "NV", "RENO")
    _, out, _ = _run("date", "March 5, 2024\n", as_json=True)
    assert json.loads(out) == {"canonical": "2024-03-05", "year": 2024, "month": 3, "day": 5}


def test_register_parses_arguments() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["normalize", "name", "--json"])
    assert (args.kind, args.json, args.func) == ("name", True, cli._cmd)
