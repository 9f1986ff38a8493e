"""Statutory interest from the dated rate table: per day, to the cent, across rate changes."""

from __future__ import annotations

from datetime import date

import pytest

from dunflow.interest import RATES, rate_on, statutory_interest


def test_the_table_holds_both_kinds_with_their_dates():
    assert rate_on("consumer", date(2023, 6, 30)).basis_points == 400
    assert rate_on("consumer", date(2023, 7, 1)).basis_points == 600
    assert rate_on("commercial", date(2025, 7, 1)).basis_points == 1015
    assert all(len(RATES[kind]) >= 6 for kind in ("consumer", "commercial"))


def test_consumer_interest_across_a_rate_change():
    # € 1,000 from 1 June to 1 August 2023: 30 days at 4% and 31 days at 6%.
    # 100000 * 4% * 30/365 = 328.77 -> 329 cents; 100000 * 6% * 31/365 = 509.59 -> 510 cents.
    interest = statutory_interest(100_000, date(2023, 6, 1), date(2023, 8, 1), "consumer")
    assert [(p.start, p.days, p.basis_points, p.cents) for p in interest.periods] == [
        (date(2023, 6, 1), 30, 400, 329), (date(2023, 7, 1), 31, 600, 510)]
    assert interest.cents == 839


def test_consumer_interest_is_simple_over_a_year():
    # € 1,000 through 2024 (366 days) at 7%: 100000 * 7% * 366/365 = 7019.18 -> 7019 cents, no compounding.
    interest = statutory_interest(100_000, date(2024, 1, 1), date(2025, 1, 1), "consumer")
    assert interest.cents == 7_019
    assert {p.base_cents for p in interest.periods} == {100_000}


def test_commercial_interest_compounds_after_each_full_year():
    # € 10,000 from 1 January 2023 for two years.
    # 2023: 181 days at 10.5% = 52068.49 -> 52068; 184 days at 12% = 60493.15 -> 60493; year 112561.
    # 2024 on 1112561: 182 days at 12.5% = 69344.55 -> 69345; 184 days at 12.25% = 68704.45 -> 68704.
    interest = statutory_interest(1_000_000, date(2023, 1, 1), date(2025, 1, 1), "commercial")
    assert [(p.days, p.basis_points, p.base_cents, p.cents) for p in interest.periods] == [
        (181, 1050, 1_000_000, 52_068), (184, 1200, 1_000_000, 60_493),
        (182, 1250, 1_112_561, 69_345), (184, 1225, 1_112_561, 68_704)]
    assert interest.cents == 250_610


def test_nothing_accrues_before_the_start_or_on_nothing():
    assert statutory_interest(100_000, date(2025, 3, 1), date(2025, 3, 1), "consumer").cents == 0
    assert statutory_interest(0, date(2025, 3, 1), date(2025, 4, 1), "consumer").cents == 0


def test_a_day_before_the_table_is_refused():
    with pytest.raises(ValueError, match="no consumer statutory interest rate is known for 2001-01-01"):
        statutory_interest(100_000, date(2001, 1, 1), date(2001, 2, 1), "consumer")
