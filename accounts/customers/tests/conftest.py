import pytest


@pytest.fixture(autouse=True)
def _fresh_kek(kek):
    """Meters made here get keys wrapped under a KEK of this test's own."""
