"""Linkage requests: a named person at the issuer links new addresses; issuance then treats them as on record."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from blindmatch.audit.log import AuditLog
from blindmatch.audit.verify import load_entries, verify_log
from blindmatch.cli.main import main
from blindmatch.issuer.config import IssuerConfig
from blindmatch.issuer.issue import audit_origin, issue_tokens
from blindmatch.issuer.linkage import ApprovalError, approve_request
from blindmatch.issuer.records import NOT_LINKED, PERSON_DIFFERS, UNKNOWN_ORDER, OrdersFileError
from blindmatch.issuer.rules import NOT_FINAL, OVER_ADDRESS_CAP
from blindmatch.normalize import default_schema
from blindmatch.requester.token_inputs import NO_TOKEN, load_tokens, prepare_token_elements
from blindmatch.vocabulary import Mode
from tests.helpers.issuer_setup import make_issuer, write_orders

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
ALICE = {"name": "Alice Smith", "order_date": "2025-01-02", "case_ref": "2025-CV-0001"}
BOB = {"name": "Bob Jones", "order_date": "2025-01-02", "case_ref": "2025-CV-0002"}
CLERK = "Jane Clerk"


def _address(i: int) -> str:
    return f"{100 + i} Oak Ave, Springfield, IL 62701"


@pytest.fixture
def issuer(tmp_path: Path) -> IssuerConfig:
    return make_issuer(tmp_path / "issuer", {"Example Tax Authority": 10}, cap=3)


@pytest.fixture
def orders(tmp_path: Path) -> Path:
    """The issuer's records: Alice's order at one address, Bob's, and an order that is not final."""
    path = tmp_path / "orders.csv"
    write_orders(path, [
        {**ALICE, "address": _address(0)},
        {**BOB, "address": _address(50)},
        {"name": "Carol White", "address": _address(60), "order_date": "2025-01-02", "case_ref": "2025-CV-0003",
         "order_status": "pending"},
    ])
    return path


def _request(tmp_path: Path, rows: list[dict[str, str]], name: str = "request.csv") -> Path:
    path = tmp_path / name
    write_orders(path, rows)
    return path


def _statuses(tmp_path: Path, issuer: IssuerConfig, orders: Path, rows: list[dict[str, str]]) -> list[str]:
    """Issue tokens for a requester's ``rows`` against ``orders``; each row's status at the requester."""
    queries = _request(tmp_path, rows, "queries.csv")
    issue_tokens(queries, issuer, tmp_path / "tokens", orders=orders, now=NOW)
    tokens = load_tokens(tmp_path / "tokens", issuer.signing_key.with_name("issuer.key.pub"), default_schema())
    _, statuses = prepare_token_elements(queries, tokens, default_schema(), Mode.MEMBERSHIP, NOW.date(), now=NOW)
    return [status for _, status, _ in statuses]


def test_an_approved_address_gets_tokens_an_unapproved_one_none(tmp_path: Path, issuer: IssuerConfig,
                                                              orders: Path) -> None:
    rows = [{**ALICE, "address": _address(0)}, {**ALICE, "address": _address(1)}, {**BOB, "address": _address(2)}]
    # Before any approval only the address on the issuer's record is linked.
    assert _statuses(tmp_path, issuer, orders, rows) == ["ok", NO_TOKEN, NO_TOKEN]
    report = approve_request(_request(tmp_path, [{**ALICE, "address": _address(1)}]), orders, issuer, CLERK, now=NOW)
    assert (report.approved, report.rejected) == ([1], {})
    assert _statuses(tmp_path, issuer, orders, rows) == ["ok", "ok", NO_TOKEN]
    # The issuance report names the unlinked row, and the audit entry counts what an approval linked.
    report = issue_tokens(_request(tmp_path, rows, "queries.csv"), issuer, tmp_path / "t2", orders=orders, now=NOW)
    assert (report.issued, report.by_approval, report.unlinked, report.refused[NOT_LINKED]) == (2, 1, [3], 1)
    assert load_entries(issuer.state_dir)[-1]["by_approval"] == 1


def test_rejected_rows_are_named_with_their_reason(tmp_path: Path, issuer: IssuerConfig, orders: Path) -> None:
    request = _request(tmp_path, [
        {**ALICE, "address": _address(1)},                                   # approved
        {**ALICE, "address": _address(2), "case_ref": "2025-CV-9999"},       # no such order
        {**BOB, "name": "Robert Brown", "address": _address(3)},             # the order is Bob's
        {"name": "Carol White", "address": _address(4), "order_date": "2025-01-02", "case_ref": "2025-cv-0003"},
        {**ALICE, "address": _address(5), "case_ref": " "},                  # no order reference
        {**ALICE, "address": "somewhere"},                                   # no usable address
        {**ALICE, "address": _address(0)},                                   # already on the issuer's record
    ])
    report = approve_request(request, orders, issuer, CLERK, now=NOW)
    assert report.approved == [1] and report.on_record == [7]
    assert report.rejected == {2: UNKNOWN_ORDER, 3: PERSON_DIFFERS, 4: NOT_FINAL, 5: "invalid: case_ref",
                               6: "invalid: address"}
    summary = report.summary(request)
    assert "row 2: rejected: no such order" in summary and "1 approved by Jane Clerk" in summary


def test_the_address_cap_counts_approved_links_with_record_addresses(tmp_path: Path, issuer: IssuerConfig,
                                                                   orders: Path) -> None:
    # Alice has one address on record; the cap is 3: two more may be approved, in one request or several.
    first = approve_request(_request(tmp_path, [{**ALICE, "address": _address(1)}]), orders, issuer, CLERK, now=NOW)
    assert first.approved == [1]
    second = approve_request(_request(tmp_path, [{**ALICE, "address": _address(i)} for i in (1, 2, 3)]),
                             orders, issuer, CLERK, now=NOW)
    assert (second.on_record, second.approved, second.rejected) == ([1], [2], {3: OVER_ADDRESS_CAP})
    rows = [{**ALICE, "address": _address(i)} for i in range(4)]
    assert _statuses(tmp_path, issuer, orders, rows) == ["ok", "ok", "ok", NO_TOKEN]


def test_tokens_issued_this_epoch_count_against_an_approval(tmp_path: Path, issuer: IssuerConfig) -> None:
    # ORDERS.csv issued on its own (no --orders) gave Alice tokens for three addresses this epoch.
    records = _request(tmp_path, [{**ALICE, "address": _address(i)} for i in range(3)], "orders.csv")
    assert issue_tokens(records, issuer, tmp_path / "tokens", now=NOW).issued == 3
    report = approve_request(_request(tmp_path, [{**ALICE, "address": _address(7)}]), records, issuer, CLERK, now=NOW)
    assert report.rejected == {1: OVER_ADDRESS_CAP}


def test_the_audit_entry_names_the_approver_and_holds_no_personal_data(tmp_path: Path, issuer: IssuerConfig,
                                                                     orders: Path) -> None:
    request = _request(tmp_path, [{**ALICE, "address": _address(1)}, {**BOB, "address": _address(2), "case_ref": "x"}])
    report = approve_request(request, orders, issuer, CLERK, now=NOW)
    entry = load_entries(issuer.state_dir)[-1]
    assert {k: entry[k] for k in ("event", "by", "request", "rows", "approved", "on_record", "rejected")} == {
        "event": "linkage_approved", "by": CLERK, "request": report.request_id, "rows": 2, "approved": 1,
        "on_record": 0, "rejected": 1}
    log_text = b"".join(p.read_bytes() for p in issuer.state_dir.rglob("*") if p.is_file())
    for value in ("Alice", "Smith", "Oak", "2025-CV-0001", "62701"):
        assert value.encode() not in log_text.replace(b"Jane Clerk", b"")  # neither the log nor the state
    assert verify_log(issuer.state_dir).ok


def test_an_interrupted_approval_keeps_earlier_approvals_and_the_log(tmp_path: Path, issuer: IssuerConfig,
                                                                  orders: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    approve_request(_request(tmp_path, [{**ALICE, "address": _address(1)}]), orders, issuer, CLERK, now=NOW)
    with AuditLog.open(issuer.state_dir, audit_origin(issuer)) as log:
        size = log.size

    def crash(*_: object) -> None:
        raise OSError("power lost")

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", crash)  # the approval store is never replaced
        with pytest.raises(OSError, match="power lost"):
            approve_request(_request(tmp_path, [{**ALICE, "address": _address(2)}], "second.csv"), orders, issuer,
                            CLERK, now=NOW)
    # A request unreadable at its third row stops before anything is written.
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"name,address,case_ref\nAlice Smith,1 Elm St Springfield IL 62701,2025-CV-0001\n"
                    b"x,y,z\n\"unterminated,row,3\n")
    with pytest.raises(OrdersFileError, match="row 3"):
        approve_request(bad, orders, issuer, CLERK, now=NOW)
    with AuditLog.open(issuer.state_dir, audit_origin(issuer)) as log:
        assert log.size == size + 1  # the crashed approval was audited before its effect; nothing else
    assert verify_log(issuer.state_dir).ok
    rows = [{**ALICE, "address": _address(i)} for i in range(3)]
    assert _statuses(tmp_path, issuer, orders, rows) == ["ok", "ok", NO_TOKEN]


def test_a_request_without_its_columns_or_approver_is_refused_whole(tmp_path: Path, issuer: IssuerConfig,
                                                                   orders: Path) -> None:
    request = tmp_path / "request.csv"
    request.write_text("name,address\nAlice Smith,100 Oak Ave Springfield IL 62701\n")
    with pytest.raises(OrdersFileError, match=r"request.csv: no column\(s\) case_ref"):
        approve_request(request, orders, issuer, CLERK, now=NOW)
    with pytest.raises(ApprovalError, match="--by"):
        approve_request(request, orders, issuer, "  ", now=NOW)
    assert not (issuer.state_dir / "audit").exists() or not load_entries(issuer.state_dir)


def test_issuer_approve_command(tmp_path: Path, issuer: IssuerConfig, orders: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    request = _request(tmp_path, [{**ALICE, "address": _address(1)}, {**BOB, "address": _address(2), "case_ref": "x"}])
    config = issuer.seed_file.with_name("issuer.toml")
    assert main(["issuer", "approve", str(request), "--orders", str(orders), "--by", CLERK, "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "row 2: rejected: no such order" in out and "1 approved by Jane Clerk" in out
    queries = _request(tmp_path, [{**ALICE, "address": _address(1)}], "queries.csv")
    assert main(["issuer", "issue", str(queries), "--orders", str(orders), "--config", str(config),
                 "--out", str(tmp_path / "tokens")]) == 0
    assert "1 of them linked by an approved linkage request" in capsys.readouterr().out


def test_the_requester_asks_for_exactly_its_eligible_rows_without_a_token(tmp_path: Path, issuer: IssuerConfig,
                                                                          orders: Path) -> None:
    """The whole round: issue, linkage-request, approve, issue again: the approved rows then have tokens."""
    from blindmatch.requester.linkage_request import QUERIES_ROW, LinkageRequestError, prepare_linkage_request

    rows = [{**ALICE, "address": _address(0)}, {**ALICE, "address": _address(1)},
            {**ALICE, "address": _address(2), "order_date": "2999-01-01"},  # the requester's own check refuses it
            {**BOB, "address": _address(3)}]
    queries = _request(tmp_path, rows, "queries.csv")
    tokens = tmp_path / "tokens"
    issue_tokens(queries, issuer, tokens, orders=orders, now=NOW)
    pinned = issuer.signing_key.with_name("issuer.key.pub")
    request_path = tmp_path / "request.csv"
    request = prepare_linkage_request(queries, tokens, pinned, default_schema(), request_path, now=NOW)
    assert request.rows == [2, 4] and request.left_out == {"ok": 1, "ineligible: order_date in the future": 1}
    assert request_path.stat().st_mode & 0o777 == 0o600
    assert request_path.read_text().splitlines()[0] == f"{QUERIES_ROW},name,address,order_date,case_ref"
    assert approve_request(request_path, orders, issuer, CLERK, now=NOW).approved == [1, 2]
    assert _statuses(tmp_path, issuer, orders, rows) == ["ok", "ok", "ineligible: order_date in the future", "ok"]
    no_case = _request(tmp_path, [{"name": "Alice Smith", "address": _address(1), "order_date": "2025-01-02"}], "q2.csv")
    with pytest.raises(LinkageRequestError, match="no column 'case_ref'"):
        prepare_linkage_request(no_case, tokens, pinned, default_schema(), tmp_path / "r2.csv", now=NOW)


def test_requester_linkage_request_command(tmp_path: Path, issuer: IssuerConfig, orders: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers.config_texts import requester_toml

    queries = _request(tmp_path, [{**ALICE, "address": _address(0)}, {**ALICE, "address": _address(1)}], "queries.csv")
    issue_tokens(queries, issuer, tmp_path / "tokens", orders=orders, now=datetime.now(UTC))
    plain = tmp_path / "plain.toml"
    plain.write_text(requester_toml())
    config = tmp_path / "requester.toml"
    config.write_text(requester_toml() + f'[eligibility]\nissuer_key = "{issuer.signing_key}.pub"\n'
                                         f'tokens = "{tmp_path / "tokens"}"\n')
    out = tmp_path / "request.csv"
    assert main(["requester", "linkage-request", str(queries), "--config", str(config), "--out", str(out)]) == 0
    assert "1 rows without a token asked for" in capsys.readouterr().out
    assert [line.split(",")[0] for line in out.read_text().splitlines()] == ["queries_row", "2"]
    assert main(["requester", "linkage-request", str(queries), "--config", str(plain), "--out", str(out)]) != 0
    assert "no [eligibility] table" in capsys.readouterr().err


def test_an_approval_waits_for_another_command_holding_the_issuer_state(tmp_path: Path, issuer: IssuerConfig,
                                                                        orders: Path) -> None:
    import threading

    from blindmatch.issuer.rules import state_lock

    request = _request(tmp_path, [{**ALICE, "address": _address(1)}])
    done = threading.Event()
    with state_lock(issuer.state_dir):  # e.g. a clerk's approval or an issuance in progress
        worker = threading.Thread(target=lambda: (approve_request(request, orders, issuer, CLERK, now=NOW), done.set()))
        worker.start()
        assert not done.wait(0.5)  # it read nothing yet that the other command could still change
    worker.join(10)
    assert done.is_set()


def test_the_audit_report_shows_approvals_by_approver(tmp_path: Path, issuer: IssuerConfig, orders: Path) -> None:
    from blindmatch.audit.report import render_report

    approve_request(_request(tmp_path, [{**ALICE, "address": _address(1)}, {**ALICE, "address": _address(2)}]),
                    orders, issuer, CLERK, now=NOW)
    approve_request(_request(tmp_path, [{**BOB, "address": _address(3), "case_ref": "x"}], "r2.csv"), orders, issuer,
                    "Sam Registrar", now=NOW)
    page = render_report(issuer.state_dir)
    assert "Linked addresses approved, by approver" in page and "Jane Clerk" in page and "Sam Registrar" in page


def test_an_approval_the_audit_log_cannot_record_takes_no_effect(tmp_path: Path, issuer: IssuerConfig, orders: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*_: object, **__: object) -> int:
        raise OSError("audit disk full")

    with monkeypatch.context() as patch:
        patch.setattr(AuditLog, "append", unavailable)
        with pytest.raises(OSError, match="audit disk full"):
            approve_request(_request(tmp_path, [{**ALICE, "address": _address(1)}]), orders, issuer, CLERK, now=NOW)
    assert _statuses(tmp_path, issuer, orders, [{**ALICE, "address": _address(1)}]) == [NO_TOKEN]


def test_a_revoked_link_gets_no_more_tokens(tmp_path: Path, issuer: IssuerConfig, orders: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from blindmatch.issuer.linkage import NOT_APPROVED, revoke_request

    rows = [{**ALICE, "address": _address(1)}, {**ALICE, "address": _address(2)}]
    assert approve_request(_request(tmp_path, rows), orders, issuer, CLERK, now=NOW).approved == [1, 2]
    assert _statuses(tmp_path, issuer, orders, rows) == ["ok", "ok"]
    mistaken = _request(tmp_path, [rows[1], {**ALICE, "address": _address(0)}, {**ALICE, "address": "nowhere"}],
                        "mistaken.csv")
    report = revoke_request(mistaken, issuer, "Sam Registrar", now=NOW)
    assert report.revoked == [1] and report.not_revoked == {2: NOT_APPROVED, 3: "invalid: address"}
    entry = load_entries(issuer.state_dir)[-1]
    assert (entry["event"], entry["by"], entry["revoked"], entry["not_revoked"]) == \
        ("linkage_revoked", "Sam Registrar", 1, 2)
    assert _statuses(tmp_path, issuer, orders, rows) == ["ok", NO_TOKEN]  # the revoked address is linked no more
    config = issuer.seed_file.with_name("issuer.toml")
    assert main(["issuer", "revoke", str(mistaken), "--by", CLERK, "--config", str(config)]) == 0
    assert "row 1: not revoked: no approved link" in capsys.readouterr().out
    assert verify_log(issuer.state_dir).ok
