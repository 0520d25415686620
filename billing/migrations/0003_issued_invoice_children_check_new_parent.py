"""The trigger of 0002 checked only OLD.invoice_id on UPDATE, so a draft's line or read could be
moved onto an issued invoice (`UPDATE ... SET invoice_id = <issued>`). On UPDATE both the old
and the new parent must be unissued now. PostgreSQL only, like 0002."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION billing_refuse_issued_child() RETURNS trigger AS $$
DECLARE
    parent bigint;
BEGIN
    FOREACH parent IN ARRAY CASE TG_OP
            WHEN 'INSERT' THEN ARRAY[NEW.invoice_id]::bigint[]
            WHEN 'DELETE' THEN ARRAY[OLD.invoice_id]::bigint[]
            ELSE ARRAY[OLD.invoice_id, NEW.invoice_id]::bigint[] END
    LOOP
        IF EXISTS (SELECT 1 FROM billing_invoice WHERE id = parent AND status = 'issued') THEN
            RAISE EXCEPTION 'invoice % is issued: its lines and reads cannot change', parent
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$ LANGUAGE plpgsql;
"""

# The function as 0002 created it.
BACKWARD = """
CREATE OR REPLACE FUNCTION billing_refuse_issued_child() RETURNS trigger AS $$
DECLARE
    parent bigint := CASE WHEN TG_OP = 'INSERT' THEN NEW.invoice_id ELSE OLD.invoice_id END;
BEGIN
    IF EXISTS (SELECT 1 FROM billing_invoice WHERE id = parent AND status = 'issued') THEN
        RAISE EXCEPTION 'invoice % is issued: its lines and reads cannot change', parent
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$ LANGUAGE plpgsql;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_issued_invoices_immutable")]

    operations = [migrations.RunPython(forward, backward)]
