"""Business days, Dutch holidays and the 14-day term of a notice."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from dunflow.calendar import (
    AMSTERDAM,
    add_business_days,
    is_business_day,
    next_business_day,
    next_contact_moment,
    notice_term_ends,
)
from dunflow.flow import ContactHours


def test_weekends_and_dutch_holidays_are_no_business_days():
    assert is_business_day(date(2026, 12, 24))  # Thursday
    assert not is_business_day(date(2026, 12, 25))  # Christmas, a Friday
    assert not is_business_day(date(2026, 12, 27))  # Sunday
    assert not is_business_day(date(2026, 4, 27))  # King's Day, a Monday
    assert not is_business_day(date(2027, 5, 5))  # Liberation Day, also outside lustrum years
    assert next_business_day(date(2026, 12, 24)) == date(2026, 12, 28)
    assert add_business_days(date(2026, 4, 2), 2) == date(2026, 4, 8)  # over Good Friday to Easter Monday


@pytest.mark.parametrize(("sent_on", "channel", "last_day"), [
    # a letter posted on Tuesday is received Wednesday; 14 days later is a Wednesday
    (date(2026, 11, 3), "letter", date(2026, 11, 18)),
    # posted Friday: received Monday (over the weekend), term ends two weeks later on Monday
    (date(2026, 11, 6), "letter", date(2026, 11, 23)),
    # posted Thursday before Easter: Good Friday, the weekend and Easter Monday pass, received Tuesday 7 April
    (date(2026, 4, 2), "letter", date(2026, 4, 21)),
    # posted Thursday 10 December, received Friday 11: the 14th day is Christmas, so the term runs
    # over Boxing Day (a Saturday) and the Sunday to Monday 28 December
    (date(2026, 12, 10), "letter", date(2026, 12, 28)),
    # an email is received the day it is sent
    (date(2026, 11, 3), "email", date(2026, 11, 17)),
])
def test_the_14_day_term_after_the_day_of_receipt(sent_on, channel, last_day):
    assert notice_term_ends(sent_on, channel) == last_day


@pytest.mark.parametrize(("now", "hours", "moment"), [
    # Saturday 22:30: Sunday is never a contact day, so Monday 08:00
    (datetime(2026, 11, 28, 22, 30), ContactHours(), datetime(2026, 11, 30, 8, 0)),
    # Saturday 22:30 before Easter: Sunday and Easter Monday pass, Tuesday 08:00 (summer time)
    (datetime(2027, 3, 27, 22, 30), ContactHours(), datetime(2027, 3, 30, 8, 0)),
    # a Tuesday 07:15 waits for 08:00; within the hours it goes at once
    (datetime(2026, 11, 24, 7, 15), ContactHours(), datetime(2026, 11, 24, 8, 0)),
    (datetime(2026, 11, 24, 20, 59), ContactHours(), datetime(2026, 11, 24, 20, 59)),
    # letters on business days only: Saturday noon goes Monday; Christmas Eve evening after Boxing Day
    (datetime(2026, 11, 28, 12, 0), ContactHours(end=time(18), business_days_only=True), datetime(2026, 11, 30, 8, 0)),
    (datetime(2026, 12, 24, 19, 0), ContactHours(end=time(18), business_days_only=True), datetime(2026, 12, 28, 8, 0)),
])
def test_the_next_moment_a_debtor_may_be_contacted(now, hours, moment):
    assert next_contact_moment(now.replace(tzinfo=AMSTERDAM), hours) == moment.replace(tzinfo=AMSTERDAM)


def test_contact_hours_follow_the_debtors_time_zone():
    # 22:30 on a Friday in Amsterdam is 16:30 in New York: within the hours there
    now = datetime(2026, 11, 27, 22, 30, tzinfo=AMSTERDAM)
    assert next_contact_moment(now, ContactHours(), "America/New_York") == now
