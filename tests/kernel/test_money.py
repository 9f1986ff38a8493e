from __future__ import annotations

import pytest

from dunflow.money import (
    check_currency,
    collection_costs,
    format_amount,
    parse_amount,
    split_into_terms,
    statutory_collection_costs,
)


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


# Hand-computed with the scale: 15% up to 2,500; 10% to 5,000; 5% to 10,000; 1% to 200,000;
# 0.5% above; at least 40, at most 6,775 euros. Each band is rounded to the cent.
@pytest.mark.parametrize(("principal", "bands", "costs", "rule"), [
    (1, [0, 0, 0, 0, 0], 4_000, "minimum"),                                     # € 0.01: 0.0015 -> minimum € 40
    (26_667, [4_000, 0, 0, 0, 0], 4_000, "scale"),                              # € 266.67: 40.0005 -> € 40.00
    (250_000, [37_500, 0, 0, 0, 0], 37_500, "scale"),                           # € 2,500: 375
    (250_001, [37_500, 0, 0, 0, 0], 37_500, "scale"),                           # € 2,500.01: 10% of a cent rounds away
    (500_000, [37_500, 25_000, 0, 0, 0], 62_500, "scale"),                      # € 5,000: 375 + 250
    (1_000_000, [37_500, 25_000, 25_000, 0, 0], 87_500, "scale"),               # € 10,000: 375 + 250 + 250
    (20_000_000, [37_500, 25_000, 25_000, 190_000, 0], 277_500, "scale"),       # € 200,000: 875 + 1,900
    (100_000_000, [37_500, 25_000, 25_000, 190_000, 400_000], 677_500, "scale"),  # € 1,000,000: 2,775 + 4,000
    (100_000_100, [37_500, 25_000, 25_000, 190_000, 400_001], 677_500, "maximum"),  # a euro more: capped
])
def test_the_cost_scale_at_its_boundaries(principal, bands, costs, rule):
    result = collection_costs(principal)
    assert [band.cents for band in result.bands] == bands
    assert (result.costs_cents, result.rule, result.vat_cents, result.total_cents) == (costs, rule, 0, costs)
    assert sum(band.base_cents for band in result.bands) == principal


def test_vat_is_added_only_when_asked_for():
    assert collection_costs(300_000, vat=True).as_dict() | {"bands": None} == {
        "principal_cents": 300_000, "debtor_type": "consumer", "bands": None, "rule": "scale",
        "costs_cents": 42_500, "vat_cents": 8_925, "total_cents": 51_425}


def test_an_agreed_percentage_applies_to_businesses_only():
    assert collection_costs(300_000, "business", agreed_per_mille=150).costs_cents == 45_000
    assert collection_costs(300_000, "consumer", agreed_per_mille=150).costs_cents == 42_500
    assert collection_costs(10_000, "business", agreed_per_mille=150).costs_cents == 4_000  # minimum holds


def test_the_breakdown_reads_as_a_sentence():
    text = collection_costs(300_000).describe()
    assert text == "€425.00 collection costs on €3,000.00: 15% of €2,500.00 = €375.00; 10% of €500.00 = €50.00"


@pytest.mark.parametrize(("text", "cents"), [("3000", 300_000), ("3000.00", 300_000), ("266,67", 26_667),
                                             ("0.5", 50)])
def test_amounts_are_parsed_to_cents(text, cents):
    assert parse_amount(text) == cents


@pytest.mark.parametrize("text", ["", "-5", "3.000,00", "12.345", "1e3", "euro"])
def test_bad_amounts_are_refused(text):
    with pytest.raises(ValueError, match="e.g. 3000.00"):
        parse_amount(text)
