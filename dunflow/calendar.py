"""Flow time: when a wait ends, in real days or compressed (DUNFLOW_DAY_SECONDS).

Pure functions of their inputs, so workflow code may use them deterministically.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

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
