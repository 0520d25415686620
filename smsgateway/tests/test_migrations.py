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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_partial_indexes_replace_the_old_ones_without_blocking_writers():
    sql = StringIO()
    call_command("sqlmigrate", "smsgateway", "0006", stdout=sql)
    statements = [line for line in sql.getvalue().splitlines() if "INDEX" in line]
    assert statements and all("CONCURRENTLY" in line for line in statements), statements
    # Built before the old ones go, so no query is ever left without an index.
    creates = [i for i, line in enumerate(statements) if line.startswith("CREATE")]
    drops = [i for i, line in enumerate(statements) if line.startswith("DROP")]
    assert len(creates) == 4 and len(drops) == 5 and max(creates) < min(drops)
