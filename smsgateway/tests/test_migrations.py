"""Schema changes to the inbound table must not stop ingest while they run."""

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)  # sqlmigrate refuses inside a transaction
def test_the_waiting_index_is_built_without_blocking_writers():
    # A plain CREATE INDEX holds off every INSERT of an arriving SMS until it finishes.
    sql = StringIO()
    call_command("sqlmigrate", "smsgateway", "0004", stdout=sql)
    assert 'CREATE INDEX CONCURRENTLY "inbound_waiting"' in sql.getvalue()
