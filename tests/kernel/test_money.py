from __future__ import annotations

import pytest

from dunflow.money import check_currency, format_amount, split_into_terms, statutory_collection_costs


@pytest.mark.parametrize(("principal", "costs"), [
    (10_000, 4_000),          # € 100: the minimum of € 40
    (26_700, 4_005),          # € 267: 15%
    (250_000, 37_500),        # € 2,500: 15% of all
    (300_000, 42_500),        # € 3,000: 375 + 10% of 500
    (1_000_000, 87_500),      # € 10,000: 375 + 250 + 250
    (20_000_000, 277_500),    # € 200,000
    (100_000_000, 677_500),   # capped at € 6,775
])
def test_statutory_collection_costs(principal, costs):
    assert statutory_collection_costs(principal) == costs


def test_amounts_are_formatted_per_language():
    assert format_amount(123_456, "EUR", "nl") == "€ 1.234,56"
    assert format_amount(123_456, "EUR", "en") == "€1,234.56"
    assert format_amount(-5, "EUR", "nl") == "-€ 0,05"


def test_terms_add_up_to_the_cent():
    assert split_into_terms(10_000, 3) == [3_334, 3_333, 3_333]
    assert sum(split_into_terms(99_999, 7)) == 99_999


def test_unknown_currency_is_refused_with_the_accepted_ones():
    assert check_currency("EUR") == "EUR"
    with pytest.raises(ValueError, match="one of .*EUR"):
        check_currency("EURO")
