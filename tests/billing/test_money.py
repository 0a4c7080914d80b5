"""billing.money, pure: dollars to whole nano-dollars exactly (a fraction rounds up, floats
refused), and nano-dollars back to display text and exact plain dollars."""

from decimal import Decimal

import pytest

from billing import money


def test_dollars_convert_to_whole_nanodollars_exactly():
    assert money.usd_to_nanos("1") == 1_000_000_000
    assert money.usd_to_nanos(Decimal("0.075")) == 75_000_000
    assert money.usd_to_nanos("0.000000001") == 1


def test_a_fraction_of_a_nanodollar_rounds_up():
    assert money.usd_to_nanos("0.0000000001") == 1


def test_floats_are_refused():
    with pytest.raises(TypeError):
        money.usd_to_nanos(0.1)


def test_display_and_cents():
    assert money.format_usd(1_234_560_000_000) == "$1,234.56"
    assert money.cents_to_nanos(250) == 2_500_000_000
    assert money.nanos_to_usd(1_500_000_000) == Decimal("1.5")


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (0, "0"),
        (35_000, "0.000035"),
        (1, "0.000000001"),
        (3 * 10**9, "3"),
        (12_500_000_000, "12.5"),
        (-7_250_000, "-0.00725"),
        (10 * 10**9, "10"),
    ],
)
def test_plain_dollars_are_exact_and_never_an_exponent(nanos, text):
    assert money.usd_plain(nanos) == text
    assert Decimal(text) == money.nanos_to_usd(nanos)
    assert money.usd_plain(nanos) == format(money.nanos_to_usd(nanos).normalize(), "f")
