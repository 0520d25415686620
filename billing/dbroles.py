"""The PostgreSQL roles of the portal and their grants (S11: least privilege).

- portal_app: the web and worker processes; data access on every table, no DDL (migrations run
  as the database owner).
- portal_billing_ro: the billing run; SELECT only on readings and the few tables billing reads,
  SELECT/INSERT/UPDATE (never DELETE) on billing's own tables.
"""

from __future__ import annotations

import os

from django.apps import apps

APP_ROLE = "portal_app"
BILLING_RO_ROLE = "portal_billing_ro"
PASSWORD_ENV = {
    APP_ROLE: "PORTAL_APP_DB_PASSWORD",
    BILLING_RO_ROLE: "PORTAL_BILLING_RO_DB_PASSWORD",
}
# What the billing run reads besides its own tables.
BILLING_READS = (
    "readings.Reading",
    "devices.Meter",
    "devices.Premises",
    "devices.MeterReplacement",
)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def statements(database: str, billing_sequences: list[str]) -> list[tuple[str, str]]:
    """(sql to run, sql to print) pairs; the printed form never shows a password."""
    result: list[tuple[str, str]] = []

    def add(sql: str, shown: str | None = None) -> None:
        result.append((sql, shown or sql))

    for role in (APP_ROLE, BILLING_RO_ROLE):
        add(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(role)}) "
            f"THEN CREATE ROLE {_q(role)} LOGIN; END IF; END $$"
        )
        password = os.environ.get(PASSWORD_ENV[role], "")
        if password:
            add(
                f"ALTER ROLE {_q(role)} PASSWORD {_literal(password)}",
                f"ALTER ROLE {_q(role)} PASSWORD '********'",
            )
    both = f"{_q(APP_ROLE)}, {_q(BILLING_RO_ROLE)}"
    add(f"GRANT CONNECT ON DATABASE {_q(database)} TO {both}")
    add(f"GRANT USAGE ON SCHEMA public TO {both}")
    app = _q(APP_ROLE)
    add(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app}")
    add(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {app}")
    # The audit log is append-only for the application (S13): no UPDATE or DELETE of records,
    # no deleting the chain head (and no TRUNCATE on anything, which is never granted).
    add(f"REVOKE UPDATE, DELETE ON audit_auditevent FROM {app}")
    add(f"REVOKE DELETE ON audit_auditchainhead FROM {app}")
    # Tables the owner creates later (new migrations, monthly reading partitions).
    add(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE "
        f"ON TABLES TO {app}"
    )
    add(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {app}")
    ro = _q(BILLING_RO_ROLE)
    # Start from nothing, so a grant made by hand earlier does not survive a re-run.
    add(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {ro}")
    add(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {ro}")
    reads = ", ".join(_q(apps.get_model(label)._meta.db_table) for label in BILLING_READS)
    add(f"GRANT SELECT ON {reads} TO {ro}")
    own = ", ".join(
        _q(model._meta.db_table) for model in apps.get_app_config("billing").get_models()
    )
    add(f"GRANT SELECT, INSERT, UPDATE ON {own} TO {ro}")
    if billing_sequences:
        add(f"GRANT USAGE, SELECT ON SEQUENCE {', '.join(billing_sequences)} TO {ro}")
    return result


def billing_sequences(cursor) -> list[str]:
    names = []
    for model in apps.get_app_config("billing").get_models():
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
        row = cursor.fetchone()
        if row and row[0]:
            names.append(row[0])
    return names
