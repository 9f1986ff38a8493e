"""The weekly maximum of contacts and per-channel opt-outs, on SQLite and on PostgreSQL."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from threading import Barrier

import pytest
from sqlmodel import Session

from dunflow.contacts import opted_out, reserve_contact, set_opt_out
from dunflow.store import Debtor
from tests.kernel import test_store

store = test_store.store  # the same store on SQLite and on PostgreSQL

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=timezone.utc)
WEEK_AGO = NOW - timedelta(days=7)


@pytest.fixture
def debtor(store):
    with Session(store) as session:
        session.add(Debtor(id="D-1", name="Jan"))
        session.commit()
    return store


def reserve(engine, key: str, at: datetime = NOW, limit: int = 3):
    with Session(engine) as session:
        return reserve_contact(session, key, "D-1", "email", at, at - timedelta(days=7), limit)


def test_eight_cases_at_once_take_exactly_three_contacts(debtor):
    start = Barrier(8)

    def attempt(index: int):
        start.wait()
        return reserve(debtor, f"case-{index}:reminder:1")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count(None) == 3
    assert {result for result in results if result is not None} == {NOW + timedelta(days=7)}


def test_the_same_key_takes_one_contact_and_a_week_frees_it(debtor):
    assert reserve(debtor, "a:1", at=WEEK_AGO + timedelta(hours=1)) is None
    assert reserve(debtor, "b:1") is None
    assert reserve(debtor, "b:1") is None  # a retried activity: still the same contact
    assert reserve(debtor, "c:1") is None
    assert reserve(debtor, "d:1") == WEEK_AGO + timedelta(hours=1) + timedelta(days=7)
    assert reserve(debtor, "d:1", at=NOW + timedelta(hours=1, seconds=1)) is None


def test_opt_outs_are_per_channel_and_an_sms_stop_counts(debtor):
    with Session(debtor) as session:
        set_opt_out(session, "D-1", "call", True, reason="asked by phone")
        set_opt_out(session, "D-1", "call", True)  # twice is once
        assert [opted_out(session, "D-1", c) for c in ("email", "sms", "call", "letter")] == [False, False, True, False]
        session.get(Debtor, "D-1").sms_opt_out = True
        session.commit()
        assert opted_out(session, "D-1", "sms")
        set_opt_out(session, "D-1", "sms", False)
        set_opt_out(session, "D-1", "call", False)
        assert not opted_out(session, "D-1", "sms") and not opted_out(session, "D-1", "call")
        with pytest.raises(ValueError, match="unknown channel 'fax'"):
            set_opt_out(session, "D-1", "fax", True)
