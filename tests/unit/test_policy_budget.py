"""Budget store: arithmetic, rolling windows, replay, concurrency, crash safety."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from blindmatch.policy import BudgetStore, Limits, PolicyRefusal, Window

ORG = "County Court of Example"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WIDE = Limits(session_max_records=10**9, org_day=10**9, org_30d=10**9, official_day=10**9, official_30d=10**9)


def ident(n: int) -> bytes:
    return n.to_bytes(16, "big")


@pytest.fixture
def store(tmp_path: Path) -> BudgetStore:
    with BudgetStore(tmp_path / "budget.sqlite") as store:
        yield store


def reserve(store: BudgetStore, n: int, records: int, *, limits: Limits = WIDE, official: str = "Alice",
            now: datetime = NOW, org: str = ORG):
    return store.reserve(session_id=ident(n), organisation=org, official=official, nonce=ident(n + 10**6),
                         records=records, limits=limits, now=now)


def refusal(store: BudgetStore, *args, **kwargs) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as info:
        reserve(store, *args, **kwargs)
    return info.value


def test_debit_reports_windows_after_the_debit(store: BudgetStore) -> None:
    limits = Limits(100, 1000, 5000, 300, 2000)
    reserve(store, 1, 40, limits=limits, official="Bob")
    debit = reserve(store, 2, 60, limits=limits)
    assert debit.records == 60 and debit.at == NOW and debit.session_id == ident(2)
    assert debit.org_day == Window(100, 1000) and debit.org_30d == Window(100, 5000)
    assert debit.official_day == Window(60, 300) and debit.official_30d == Window(60, 2000)
    assert store.usage(ORG, "Alice", NOW) == {"org_day": 100, "org_30d": 100, "official_day": 60, "official_30d": 60}
    assert store.usage(ORG, None, NOW) == {"org_day": 100, "org_30d": 100}
    assert store.remaining(ORG, "Alice", limits, NOW) == {
        "org_day": 900, "org_30d": 4900, "official_day": 240, "official_30d": 1940,
        "session_max_records": 100, "next_session_max": 100,
    }
    assert store.remaining(ORG, None, Limits(1000, 150, 5000, 1, 1), NOW)["next_session_max"] == 50
    assert store.usage("Other Org", "Alice", NOW)["org_day"] == 0


def test_session_maximum(store: BudgetStore) -> None:
    refused = refusal(store, 1, 101, limits=Limits(100, 1000, 1000, 1000, 1000))
    assert (refused.reason, refused.status) == ("over_budget", "RESOURCE_EXHAUSTED")
    assert "per-session maximum of 100" in refused.message
    reserve(store, 1, 100, limits=Limits(100, 1000, 1000, 1000, 1000))


@pytest.mark.parametrize(
    ("limits", "label"),
    [
        (Limits(100, 150, 10**6, 10**6, 10**6), "organisation's 24-hour"),
        (Limits(100, 10**6, 150, 10**6, 10**6), "organisation's 30-day"),
        (Limits(100, 10**6, 10**6, 150, 10**6), "official's 24-hour"),
        (Limits(100, 10**6, 10**6, 10**6, 150), "official's 30-day"),
    ],
)
def test_each_window_limit_refuses_and_records_nothing(store: BudgetStore, limits: Limits, label: str) -> None:
    reserve(store, 1, 100, limits=limits)
    refused = refusal(store, 2, 51, limits=limits)
    assert refused.reason == "over_budget" and label in refused.message and "100 of 150 used" in refused.message
    assert len(store.debits()) == 1
    reserve(store, 2, 50, limits=limits)  # the refused nonce was not consumed; exactly the limit fits


def test_official_windows_are_per_official(store: BudgetStore) -> None:
    limits = Limits(100, 1000, 1000, 100, 100)
    reserve(store, 1, 100, limits=limits, official="Alice")
    reserve(store, 2, 100, limits=limits, official="Bob")
    assert refusal(store, 3, 1, limits=limits, official="Alice").reason == "over_budget"
    reserve(store, 4, 100, limits=limits, org="Other Org", official="Alice")  # another organisation's Alice


def test_windows_are_rolling(store: BudgetStore) -> None:
    limits = Limits(100, 100, 150, 10**6, 10**6)
    reserve(store, 1, 100, limits=limits)
    assert refusal(store, 2, 1, limits=limits, now=NOW + timedelta(hours=23, minutes=59)).reason == "over_budget"
    reserve(store, 2, 50, limits=limits, now=NOW + timedelta(days=1))  # the first debit left the 24 h window
    assert refusal(store, 3, 1, limits=limits, now=NOW + timedelta(days=29)).reason == "over_budget"
    assert store.usage(ORG, None, NOW + timedelta(days=30)) == {"org_day": 0, "org_30d": 50}
    reserve(store, 3, 100, limits=limits, now=NOW + timedelta(days=30, microseconds=1))


def test_debits_dated_after_now_still_count(store: BudgetStore) -> None:
    """A clock stepped back must not reopen the budget."""
    limits = Limits(100, 100, 100, 100, 100)
    reserve(store, 1, 100, limits=limits, now=NOW)
    assert refusal(store, 2, 1, limits=limits, now=NOW - timedelta(hours=5)).reason == "over_budget"


def test_replayed_nonce_or_session_id(store: BudgetStore) -> None:
    reserve(store, 1, 10)
    with pytest.raises(PolicyRefusal) as info:
        store.reserve(session_id=ident(99), organisation=ORG, official="Alice", nonce=ident(1 + 10**6),
                      records=1, limits=WIDE, now=NOW)
    assert (info.value.reason, info.value.status) == ("replayed", "ALREADY_EXISTS")
    with pytest.raises(PolicyRefusal, match="replayed"):
        store.reserve(session_id=ident(1), organisation=ORG, official="Alice", nonce=ident(99),
                      records=1, limits=WIDE, now=NOW)
    # A replay is a replay even when it would also be over budget, and even years later.
    assert refusal(store, 1, 10**6, limits=Limits(1, 1, 1, 1, 1), now=NOW + timedelta(days=3000)).reason == "replayed"
    assert [d.records for d in store.debits()] == [10]


def test_store_persists_and_rejects_naive_now(tmp_path: Path) -> None:
    with BudgetStore(tmp_path / "b.sqlite") as first:
        reserve(first, 1, 7)
    with BudgetStore(tmp_path / "b.sqlite") as second:
        assert second.usage(ORG, "Alice", NOW)["official_30d"] == 7
        assert refusal(second, 1, 1).reason == "replayed"
        with pytest.raises(ValueError, match="timezone-aware"):
            reserve(second, 2, 1, now=datetime(2026, 3, 1))


# --- concurrency --------------------------------------------------------------------------
# Eight workers, each with its own connection, race to reserve until refused. Workers
# alternate between two officials; sizes 3..6. Limits: organisation 1000/day, each
# official 600/day, so both kinds of window bind. Once every worker has stopped, the
# organisation has fewer than 3 records left (otherwise both officials would be above
# 597, i.e. more than 1000 in total), so at least 998 were granted.
RACE_LIMITS = Limits(session_max_records=100, org_day=1000, org_30d=10**6, official_day=600, official_30d=10**6)


def race_worker(db: Path, worker: int, go: threading.Event | None = None) -> list[int]:
    granted = []
    with BudgetStore(db) as own_store:
        if go is not None:
            go.wait()
        for attempt in range(10_000):
            n = worker * 100_000 + attempt
            try:
                reserve(own_store, n, 3 + worker // 2, limits=RACE_LIMITS, official="AB"[worker % 2])
            except PolicyRefusal as exc:
                assert exc.reason == "over_budget"
                return granted
            granted.append(3 + worker // 2)
    raise AssertionError("never refused")


def check_race(db: Path, granted: dict[int, list[int]]) -> None:
    total = sum(sum(g) for g in granted.values())
    per_official = {o: sum(sum(granted[w]) for w in granted if "AB"[w % 2] == o) for o in "AB"}
    assert 998 <= total <= 1000
    assert all(used <= 600 for used in per_official.values())
    with BudgetStore(db) as check:
        assert check.usage(ORG, None, NOW)["org_day"] == total
        for official, used in per_official.items():
            assert check.usage(ORG, official, NOW)["official_day"] == used
        assert len(check.debits()) == sum(len(g) for g in granted.values())


def test_eight_threads_race(tmp_path: Path) -> None:
    db = tmp_path / "budget.sqlite"
    BudgetStore(db).close()
    go = threading.Event()
    granted: dict[int, list[int]] = {}
    threads = [
        threading.Thread(target=lambda w=w: granted.__setitem__(w, race_worker(db, w, go))) for w in range(8)
    ]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(granted) == list(range(8))
    check_race(db, granted)


PROCESS_WORKER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    import test_policy_budget as t
    db, worker, go = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[1] + ".go")
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.001)
    print(json.dumps(t.race_worker(db, worker)), flush=True)
    """
)


@pytest.mark.slow
def test_eight_processes_race(tmp_path: Path) -> None:
    db = tmp_path / "budget.sqlite"  # created by the racing workers themselves
    here = str(Path(__file__).parent)
    procs = [
        subprocess.Popen([sys.executable, "-c", PROCESS_WORKER, str(db), str(w), here],
                         stdout=subprocess.PIPE, text=True)
        for w in range(8)
    ]
    for proc in procs:
        assert proc.stdout.readline().strip() == "ready"
    Path(str(db) + ".go").touch()
    granted = {}
    for worker, proc in enumerate(procs):
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        granted[worker] = json.loads(out)
    check_race(db, granted)


# --- crash safety -------------------------------------------------------------------------
CRASH_WORKER = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timezone
    from pathlib import Path
    from blindmatch.policy import BudgetStore, Limits
    db, base = Path(sys.argv[1]), int(sys.argv[2])
    wide = Limits(10**9, 10**9, 10**9, 10**9, 10**9)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    store = BudgetStore(db)
    n = base
    while True:
        store.reserve(session_id=n.to_bytes(16, "big"), organisation=sys.argv[3], official="Alice",
                      nonce=(n + 10**6).to_bytes(16, "big"), records=1 + n % 7, limits=wide, now=now)
        print(n, flush=True)
        n += 1
    """
)


def test_sigkill_while_reserving_never_loses_or_double_counts(tmp_path: Path) -> None:
    db = tmp_path / "budget.sqlite"
    known: set[int] = set()  # verified in the store after earlier rounds
    rng = random.Random(1)
    for round_ in range(4):
        base = round_ * 10_000
        proc = subprocess.Popen([sys.executable, "-c", CRASH_WORKER, str(db), str(base), ORG],
                                stdout=subprocess.PIPE, text=True)
        wanted = rng.randint(20, 60)
        got = []
        while len(got) < wanted:
            line = proc.stdout.readline()
            assert line, "worker died early"
            got.append(int(line))
        time.sleep(rng.random() * 0.01)  # land anywhere within a later reservation
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        # Read the rest through the same buffered reader: readline() may already hold lines the
        # worker printed (under load, many), and communicate(timeout=...) reads the raw pipe,
        # skipping them, which made committed reservations look unprinted and the test flaky.
        got += [int(line) for line in proc.stdout.read().split()]
        proc.stdout.close()

        with sqlite3.connect(db) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        with BudgetStore(db) as check:
            stored = [int.from_bytes(d.session_id, "big") for d in check.debits()]
            assert len(stored) == len(set(stored))  # nothing recorded twice
            new = set(stored) - known
            assert set(got) <= new  # nothing committed was lost
            assert new - set(got) <= {max(got) + 1}  # at most the one killed between commit and print
            expected_used = sum(1 + n % 7 for n in stored)
            assert sum(d.records for d in check.debits()) == expected_used
            assert check.usage(ORG, "Alice", NOW) == dict.fromkeys(
                ("org_day", "org_30d", "official_day", "official_30d"), expected_used
            )
            # The interrupted reservation left no nonce behind: its retry is granted.
            retry = max(stored) + 1
            reserve(check, retry, 1 + retry % 7)
            known = set(stored) | {retry}
