"""Room on every page of the meter and key tables for the new row versions ingest writes.

Each batch of reports updates its meters' marks and its keys' replay windows and downlink
counters; none of those columns is indexed, so PostgreSQL can write the new version beside
the old one on the same page without touching any index (a HOT update), if the page has room.
At the default fill factor (100) it has none, and every update also inserts into each of the
table's indexes. Pages written before this migration keep their layout until the table is
rewritten (VACUUM FULL, pg_repack)."""

from django.db import migrations

TABLES = ("devices_meter", "devices_meterkey")


class Migration(migrations.Migration):
    dependencies = [
        ("devices", "0005_alert_closed_by_staff"),
    ]

    operations = [
        migrations.RunSQL(
            f"ALTER TABLE {table} SET (fillfactor = 80)",
            reverse_sql=f"ALTER TABLE {table} RESET (fillfactor)",
        )
        for table in TABLES
    ]
