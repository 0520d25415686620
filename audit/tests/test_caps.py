"""The cap check that does not refuse (`check_cap`) only works inside the guarded transaction."""

import pytest

from audit.caps import check_cap


@pytest.mark.django_db(transaction=True)
def test_check_cap_refuses_to_count_outside_a_transaction():
    # Outside a transaction the lock would end with the statement, before the action is
    # recorded, and concurrent requests could both slip under the cap.
    with pytest.raises(RuntimeError, match="inside the transaction"):
        check_cap("fraud.dispatched")
