"""The inbound table's indexes leave out the rows they are never asked for (nearly every
message is stored, then accepted), and the meter's own index goes (inbound_by_meter leads with
it). The inbound table takes every SMS: the new indexes are built, then the old ones dropped,
each without blocking ingest."""

import django.db.models.deletion
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models

METER_INDEX = "smsgateway_inboundmessage_meter_id_37d8d2b8"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("devices", "0006_fillfactor_for_ingest_updates"),
        ("smsgateway", "0005_outbound_send_again"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("status", "accepted"), _negated=True),
                fields=["status", "received_at"],
                name="inbound_unaccepted",
            ),
        ),
        AddIndexConcurrently(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("status", "rejected")),
                fields=["reason", "received_at"],
                name="inbound_rejected",
            ),
        ),
        AddIndexConcurrently(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("status", "part")),
                fields=["sender", "received_at"],
                name="inbound_parts",
            ),
        ),
        AddIndexConcurrently(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("meter__isnull", False)),
                fields=["meter", "status", "last_hour"],
                name="inbound_by_meter",
            ),
        ),
        RemoveIndexConcurrently(
            model_name="inboundmessage", name="smsgateway__status_ff5897_idx"
        ),
        RemoveIndexConcurrently(
            model_name="inboundmessage", name="smsgateway__reason_611496_idx"
        ),
        RemoveIndexConcurrently(
            model_name="inboundmessage", name="smsgateway__sender_c90a0b_idx"
        ),
        RemoveIndexConcurrently(
            model_name="inboundmessage", name="smsgateway__meter_i_91e3c2_idx"
        ),
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX CONCURRENTLY IF EXISTS "{METER_INDEX}"',
                    reverse_sql=(
                        f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{METER_INDEX}" '
                        'ON "smsgateway_inboundmessage" ("meter_id")'
                    ),
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="inboundmessage",
                    name="meter",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="devices.meter",
                    ),
                )
            ],
        ),
    ]
