"""Flow time (real days or compressed by DUNFLOW_DAY_SECONDS), business days, Dutch holidays.

Pure functions of their inputs, so workflow code may use them deterministically.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
# Date-anchored actions happen at this local time on their day.
ACTION_TIME = time(9, 0)
REAL_DAY_SECONDS = 86400.0


class FlowClock:
    """Maps flow durations and invoice dates to moments.

    Real time (day_seconds None): a date means 09:00 Amsterdam time on that date.
    Compressed: day N after the case's start date begins N * day_seconds after the start.
    """

    def __init__(self, origin: datetime, day_seconds: float | None):
        self.origin = origin
        self.day_seconds = day_seconds
        self.origin_date = origin.astimezone(AMSTERDAM).date()

    def duration(self, days: float = 0, hours: float = 0) -> timedelta:
        seconds_per_day = self.day_seconds or REAL_DAY_SECONDS
        return timedelta(seconds=(days + hours / 24) * seconds_per_day)

    def today(self, now: datetime) -> date:
        """The flow date of a moment: the Amsterdam date in real time, else the compressed day."""
        if self.day_seconds is None:
            return now.astimezone(AMSTERDAM).date()
        return self.origin_date + timedelta(days=int((now - self.origin).total_seconds() // self.day_seconds))

    def at_date(self, day: date) -> datetime:
        if self.day_seconds is None:
            return datetime.combine(day, ACTION_TIME, tzinfo=AMSTERDAM)
        return self.origin + self.duration(days=(day - self.origin_date).days)


# --- business days -------------------------------------------------------------------------

# Dutch public holidays from the `holidays` package, with Liberation Day (5 May) every year as
# the Algemene termijnenwet counts it. Good Friday is included too: a day less contact, never more.
# Computed once at import, outside any workflow (the package reads the clock while it computes),
# for every year the package knows (through 2100).
NL_HOLIDAYS = frozenset(holidays.country_holidays("NL", categories=("public", "optional"), years=range(2015, 2101)))


def is_holiday(day: date) -> bool:
    return day in NL_HOLIDAYS


def is_business_day(day: date) -> bool:
    return day.weekday() < 5 and not is_holiday(day)


def next_business_day(day: date) -> date:
    """The first business day after `day`."""
    day += timedelta(days=1)
    while not is_business_day(day):
        day += timedelta(days=1)
    return day


def add_business_days(day: date, count: int) -> date:
    for _ in range(count):
        day = next_business_day(day)
    return day


def notice_received_on(sent_on: date, channel: str) -> date:
    """A letter is taken as received the next business day after posting; email, SMS and calls the same day."""
    return next_business_day(sent_on) if channel == "letter" else sent_on


def notice_term_ends(sent_on: date, channel: str) -> date:
    """The last day of the 14-day term of a notice: 14 days after the day of receipt, moved to the
    next business day when it ends on a Saturday, Sunday or holiday (Algemene termijnenwet)."""
    last = notice_received_on(sent_on, channel) + timedelta(days=14)
    while not is_business_day(last):
        last += timedelta(days=1)
    return last


# --- contact hours -------------------------------------------------------------------------


def _contact_day(day: date, hours) -> bool:
    if hours.business_days_only:
        return is_business_day(day)
    return day.weekday() < 5 + hours.saturday and not is_holiday(day)


def next_contact_moment(now: datetime, hours, zone: str = "Europe/Amsterdam") -> datetime:
    """`now` when `hours` (a flow's ContactHours) allow a contact, else the start of the next
    allowed window, in the debtor's time zone: never on a Sunday or a Dutch public holiday."""
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    for offset in range(60):
        day = local.date() + timedelta(days=offset)
        if not _contact_day(day, hours):
            continue
        opens, closes = datetime.combine(day, hours.start, tzinfo=tz), datetime.combine(day, hours.end, tzinfo=tz)
        if local < closes:
            return now if local >= opens else opens
    raise ValueError(f"no moment to contact the debtor within 60 days of {local:%Y-%m-%d}")


def local_time(moment: datetime, zone: str) -> str:
    """`2026-11-30 08:00 Europe/Amsterdam`."""
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}"
