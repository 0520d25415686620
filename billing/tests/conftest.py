"""Billing tests: every one with a fresh key-encryption key; `utc` and `write_readings` are
shared with other apps' tests (`testing.billing`), as are the tariff and account fixtures."""

import pytest

from testing.billing import utc, write_readings  # noqa: F401  (the tests here import them from here)


@pytest.fixture(autouse=True)
def _fresh_kek(kek):
    """Meters made here get keys wrapped under a KEK of this test's own."""
