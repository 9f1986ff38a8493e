"""Money is an amount in integer cents plus an ISO 4217 currency code. Never floats."""

from __future__ import annotations

# Currencies dunflow accepts, with their symbol. All have two minor digits.
CURRENCY_SYMBOLS: dict[str, str] = {
    "EUR": "€",
    "USD": "$",
    "GBP": "£",
    "CHF": "CHF ",
    "DKK": "DKK ",
    "SEK": "SEK ",
    "NOK": "NOK ",
    "PLN": "PLN ",
    "CZK": "CZK ",
}


def check_currency(code: str) -> str:
    """Return the code when dunflow accepts it, else raise ValueError saying which are accepted."""
    if code not in CURRENCY_SYMBOLS:
        accepted = ", ".join(sorted(CURRENCY_SYMBOLS))
        raise ValueError(f"unknown currency {code!r}: use an ISO 4217 code, one of {accepted}")
    return code


def format_amount(cents: int, currency: str, language: str = "nl") -> str:
    """`€ 1.234,56` in Dutch, `€1,234.56` in English."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    grouped = f"{whole:,}"
    symbol = CURRENCY_SYMBOLS.get(currency, f"{currency} ")
    if language == "nl":
        grouped = grouped.replace(",", ".")
        spacer = "" if symbol.endswith(" ") else " "
        return f"{sign}{symbol}{spacer}{grouped},{part:02d}"
    return f"{sign}{symbol}{grouped}.{part:02d}"


def split_into_terms(total_cents: int, terms: int) -> list[int]:
    """Split an amount into `terms` instalments that add up to the cent; earlier terms carry the rest."""
    if terms < 1:
        raise ValueError("a plan needs at least one term")
    base, rest = divmod(total_cents, terms)
    return [base + (1 if index < rest else 0) for index in range(terms)]


# Statutory scale for extrajudicial collection costs (Besluit vergoeding voor buitengerechtelijke
# incassokosten): (upper bound of the band in cents or None, rate per mille).
COLLECTION_COST_BANDS = ((250_000, 150), (500_000, 100), (1_000_000, 50), (20_000_000, 10), (None, 5))
MAX_AMOUNT_CENTS = 10**14  # a trillion in any currency: far above any invoice, far below the store's limit
COLLECTION_COSTS_MIN_CENTS = 4_000
COLLECTION_COSTS_MAX_CENTS = 677_500


def statutory_collection_costs(principal_cents: int) -> int:
    """The statutory collection costs for a principal, before VAT, rounded to the cent."""
    if principal_cents <= 0:
        return 0
    total_millicents, lower = 0, 0
    for upper, per_mille in COLLECTION_COST_BANDS:
        band_top = principal_cents if upper is None else min(principal_cents, upper)
        if band_top > lower:
            total_millicents += (band_top - lower) * per_mille
        if upper is None or principal_cents <= upper:
            break
        lower = upper
    costs = (total_millicents + 500) // 1000
    return min(max(costs, COLLECTION_COSTS_MIN_CENTS), COLLECTION_COSTS_MAX_CENTS)
