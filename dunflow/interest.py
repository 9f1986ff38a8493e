"""Dutch statutory interest over a late principal, per day, to the cent.

Rates come from `dunflow/data/statutory_interest.csv` (read once at import, so workflow code may
use these pure functions). A year counts 365 days. Consumer debts accrue simple interest (never
more than the law allows); commercial debts compound yearly: after every full year the interest
of that year is added to the amount it is computed over (art. 6:119a BW).
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

InterestKind = Literal["consumer", "commercial"]
RATES_FILE = Path(__file__).parent / "data" / "statutory_interest.csv"
DAYS_PER_YEAR = 365


@dataclass(frozen=True)
class Rate:
    effective_from: date
    basis_points: int  # 1015 = 10.15% a year


def load_rates(path: Path = RATES_FILE) -> dict[str, tuple[Rate, ...]]:
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    rates: dict[str, list[Rate]] = {"consumer": [], "commercial": []}
    for row in csv.DictReader(rows):
        basis_points = int(Decimal(row["percent"]) * 100)
        rates[row["kind"]].append(Rate(date.fromisoformat(row["effective_from"]), basis_points))
    return {kind: tuple(sorted(found, key=lambda rate: rate.effective_from)) for kind, found in rates.items()}


RATES = load_rates()


def kind_for(debtor_type: str) -> InterestKind:
    return "commercial" if debtor_type == "business" else "consumer"


def rate_on(kind: InterestKind, day: date, rates: dict[str, tuple[Rate, ...]] = RATES) -> Rate:
    applying = [rate for rate in rates[kind] if rate.effective_from <= day]
    if not applying:
        raise ValueError(f"no {kind} statutory interest rate is known for {day.isoformat()}")
    return applying[-1]


@dataclass(frozen=True)
class InterestPeriod:
    start: date  # first day counted
    end: date  # first day not counted
    days: int
    basis_points: int
    base_cents: int
    cents: int


@dataclass(frozen=True)
class Interest:
    kind: InterestKind
    principal_cents: int
    periods: tuple[InterestPeriod, ...]
    cents: int

    def as_dict(self) -> dict:
        return asdict(self) | {"periods": [asdict(period) for period in self.periods]}


def _boundaries(kind: InterestKind, start: date, end: date, rates: dict[str, tuple[Rate, ...]]) -> list[date]:
    """Every day in (start, end) on which the rate or (commercial) the base changes."""
    days = {rate.effective_from for rate in rates[kind] if start < rate.effective_from < end}
    if kind == "commercial":
        year = 1
        while (anniversary := _add_years(start, year)) < end:
            days.add(anniversary)
            year += 1
    return sorted(days)


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28) + timedelta(days=1)


def interest_so_far(principal_cents: int, due_on: date, today: date, debtor_type: str) -> Interest:
    """Interest from the day after the due date through `today`, over the days the table covers."""
    kind = kind_for(debtor_type)
    start = max(due_on + timedelta(days=1), RATES[kind][0].effective_from)
    return statutory_interest(principal_cents, start, today + timedelta(days=1), kind)


def rate_label(kind: InterestKind, day: date) -> str:
    """`4%`: the rate on a day (the oldest known rate for days before the table)."""
    known = [rate for rate in RATES[kind] if rate.effective_from <= day] or [RATES[kind][0]]
    return f"{known[-1].basis_points / 100:g}%"


def statutory_interest(principal_cents: int, start: date, end: date, kind: InterestKind,
                       rates: dict[str, tuple[Rate, ...]] = RATES) -> Interest:
    """Interest on `principal_cents` for the days from `start` up to, not including, `end`."""
    if principal_cents <= 0 or end <= start:
        return Interest(kind, principal_cents, (), 0)
    edges = [start, *_boundaries(kind, start, end, rates), end]
    periods, base, year_interest, years = [], principal_cents, 0, 0
    for first, last in zip(edges, edges[1:]):
        if kind == "commercial" and first == _add_years(start, years + 1):
            base, year_interest, years = base + year_interest, 0, years + 1
        rate = rate_on(kind, first, rates)
        days = (last - first).days
        periods.append(InterestPeriod(first, last, days, rate.basis_points, base, _per_day(base, rate, days)))
        year_interest += periods[-1].cents
    return Interest(kind, principal_cents, tuple(periods), sum(period.cents for period in periods))


def _per_day(base_cents: int, rate: Rate, days: int) -> int:
    """`base * rate * days / 365`, rounded half up to the cent."""
    numerator, denominator = base_cents * rate.basis_points * days, 10_000 * DAYS_PER_YEAR
    return (2 * numerator + denominator) // (2 * denominator)
