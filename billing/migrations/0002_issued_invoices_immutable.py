"""On PostgreSQL the database itself refuses to change or delete an issued invoice, and to add,
change or delete the lines and reads of one: corrections go through credit notes."""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION billing_refuse_issued_change() RETURNS trigger AS $$
BEGIN
    IF OLD.status = 'issued' THEN
        RAISE EXCEPTION 'invoice % is issued and cannot change', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$ LANGUAGE plpgsql;

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

CREATE TRIGGER billing_invoice_immutable BEFORE UPDATE OR DELETE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_change();
CREATE TRIGGER billing_invoiceline_immutable BEFORE INSERT OR UPDATE OR DELETE
    ON billing_invoiceline FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_child();
CREATE TRIGGER billing_meterread_immutable BEFORE INSERT OR UPDATE OR DELETE
    ON billing_meterread FOR EACH ROW EXECUTE FUNCTION billing_refuse_issued_child();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS billing_meterread_immutable ON billing_meterread;
DROP TRIGGER IF EXISTS billing_invoiceline_immutable ON billing_invoiceline;
DROP TRIGGER IF EXISTS billing_invoice_immutable ON billing_invoice;
DROP FUNCTION IF EXISTS billing_refuse_issued_child();
DROP FUNCTION IF EXISTS billing_refuse_issued_change();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
