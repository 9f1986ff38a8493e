"""Installment plan schedules and how payments fall on terms, to the cent."""

from datetime import date

from dunflow.flow import OfferPlanStep
from dunflow.plans import TermSpec, allocate, monthly_terms, paid_through, term_counts, term_problems


def test_one_hundred_euros_over_three_terms_adds_up_to_the_cent():
    terms = monthly_terms(10_000, 3, date(2026, 3, 2))
    assert [term.amount_cents for term in terms] == [3_334, 3_333, 3_333]
    assert sum(term.amount_cents for term in terms) == 10_000


def test_awkward_amounts_always_add_up():
    for total in (1, 2, 99, 10_001, 123_457, 999_999_999):
        for count in (2, 3, 7, 12):
            amounts = [term.amount_cents for term in monthly_terms(total, count, date(2026, 1, 1))]
            assert sum(amounts) == total and max(amounts) - min(amounts) <= 1


def test_terms_fall_monthly_from_a_week_after_agreeing_and_keep_to_month_ends():
    terms = monthly_terms(40_000, 4, date(2027, 1, 24))  # first term on 31 January
    assert [term.due_on for term in terms] == [date(2027, 1, 31), date(2027, 2, 28), date(2027, 3, 31),
                                               date(2027, 4, 30)]


def test_payments_fill_terms_in_order():
    terms = [TermSpec(due_on=date(2026, 1, n), amount_cents=cents) for n, cents in ((1, 3_334), (2, 3_333), (3, 3_333))]
    assert allocate(terms, 0) == [0, 0, 0]
    assert allocate(terms, 5_000) == [3_334, 1_666, 0]
    assert allocate(terms, 6_667) == [3_334, 3_333, 0]
    assert allocate(terms, 12_000) == [3_334, 3_333, 3_333]  # an overpayment is not on the plan
    assert [paid_through(terms, paid) for paid in (0, 3_333, 3_334, 6_666, 6_667, 10_000)] == [0, 0, 1, 1, 2, 3]


def test_the_flow_limits_which_plans_an_amount_allows():
    offer = OfferPlanStep(type="offer_plan", max_terms=6, min_term_cents=2_500, next="x")
    assert term_counts(offer, 30_000) == [2, 3, 4, 5, 6]
    assert term_counts(offer, 7_500) == [2, 3]
    assert term_counts(offer, 4_999) == []
    assert term_counts(None, 30_000) == []


def test_term_problems_say_where():
    today = date(2026, 5, 1)
    good = [TermSpec(due_on=date(2026, 5, 8), amount_cents=5_000), TermSpec(due_on=date(2026, 6, 8), amount_cents=5_000)]
    assert term_problems(good, 10_000, today) == []
    bad = [TermSpec(due_on=date(2026, 4, 30), amount_cents=0), TermSpec(due_on=date(2026, 4, 1), amount_cents=9_000)]
    problems = dict(term_problems(bad, 10_000, today))
    assert set(problems) == {"terms[0].amount_cents", "terms[0].due_on", "terms[1].due_on", "terms"}
    assert "9000" in problems["terms"] and "10000" in problems["terms"]
    assert term_problems([], 10_000, today) == [("terms", "a plan has 1 to 36 terms, not 0")]
