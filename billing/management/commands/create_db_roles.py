from django.core.management.base import BaseCommand
from django.db import connections, transaction

from billing import dbroles


class Command(BaseCommand):
    help = (
        "Create (or bring up to date) the PostgreSQL roles portal_app and portal_billing_ro and "
        "their grants. Idempotent; prints every statement (passwords masked). Run it as the "
        "database owner after `migrate`. Passwords come from PORTAL_APP_DB_PASSWORD and "
        "PORTAL_BILLING_RO_DB_PASSWORD when set."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="print, do not execute")
        parser.add_argument("--database", default="default")

    def handle(self, *args, dry_run=False, database="default", **options):
        connection = connections[database]
        with transaction.atomic(using=database), connection.cursor() as cursor:
            sequences = dbroles.billing_sequences(cursor)
            for sql, shown in dbroles.statements(connection.settings_dict["NAME"], sequences):
                self.stdout.write(shown + ";")
                if not dry_run:
                    cursor.execute(sql)
        self.stdout.write("-- dry run: nothing executed" if dry_run else "-- done")
