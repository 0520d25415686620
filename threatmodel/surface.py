"""The code's attack surface, name by name, and the model element that owns each.

The consistency tests compare these tables with what the code has (`inventory.py`): a URL route,
Celery task or queue, management command or store on one side only fails the build, naming it.
Adding one to the model is one line here.
"""

from __future__ import annotations

PORTAL = "Customer portal"
API = "Readings API"
STAFF = "Staff portal and admin"
INGEST = "Ingest service"
SMS_WORKERS = "SMS workers"
WORKERS = "Celery workers"
COMMANDS_PROCESS = "Management commands"

# URL name (namespace:name; every route of the Django admin site is "admin:*") -> element.
ROUTES: dict[str, str] = {
    "home": PORTAL,
    "healthz": INGEST,  # served by the ingest service and the front end alike
    "admin:*": STAFF,
    "staff:home": STAFF,
    "staff:run": STAFF,
    "staff:start_run": STAFF,
    "staff_meter_usage": STAFF,
    "fraud:cases": STAFF,
    "fraud:case": STAFF,
    "fraud:case_note": STAFF,
    "fraud:case_resolve": STAFF,
    "fraud:case_close": STAFF,
    "fraud:case_dispatch": STAFF,
    "fraud:approve": STAFF,
    "fraud:cancel": STAFF,
    "fraud:meter": STAFF,
    "fraud:dispatch": STAFF,
    "fraud:job": STAFF,
    "fraud:job_upload": STAFF,
    "billing_staff_invoices": STAFF,
    "billing_staff_invoice": STAFF,
    "billing_staff_invoice_pdf": STAFF,
    "billing_staff_credit_note": STAFF,
    "billing_staff_runs": STAFF,
    "smsgateway:inbound": INGEST,
    "smsgateway:delivery_report": INGEST,
    "billing_my_invoices": PORTAL,
    "billing_my_invoice": PORTAL,
    "billing_my_invoice_pdf": PORTAL,
    "customer_claim": PORTAL,
    "customer_settings": PORTAL,
    "customer_delete": PORTAL,
    "account_reset_password": PORTAL,
    "account_login": PORTAL,
    "account_logout": PORTAL,
    "account_inactive": PORTAL,
    "account_signup": PORTAL,
    "account_reauthenticate": PORTAL,
    "account_email": PORTAL,
    "account_email_verification_sent": PORTAL,
    "account_change_password": PORTAL,
    "account_set_password": PORTAL,
    "account_confirm_login_code": PORTAL,
    "account_confirm_email": PORTAL,
    "account_reset_password_from_key_done": PORTAL,
    "account_reset_password_from_key": PORTAL,
    "account_reset_password_done": PORTAL,
    "mfa_index": PORTAL,
    "mfa_authenticate": PORTAL,
    "mfa_reauthenticate": PORTAL,
    "mfa_activate_totp": PORTAL,
    "mfa_deactivate_totp": PORTAL,
    "mfa_view_recovery_codes": PORTAL,
    "mfa_generate_recovery_codes": PORTAL,
    "mfa_download_recovery_codes": PORTAL,
    "usersessions_list": PORTAL,
    "portal:home": PORTAL,
    "portal:access": PORTAL,
    "portal:revoke": PORTAL,
    "portal:meter": PORTAL,
    "portal:usage": PORTAL,
    "portal:csv": PORTAL,
    "portal:retention": PORTAL,
    "portal:absence": PORTAL,
    "api:meters": API,
    "api:usage": API,
    "api-schema": API,
    "api-docs": API,
}

# Celery task name -> the process that runs it.
TASKS: dict[str, str] = {
    "smsgateway.send_outbound": SMS_WORKERS,
    "smsgateway.send_outbound_many": SMS_WORKERS,
    "smsgateway.send_due": SMS_WORKERS,
    "smsgateway.flag_silent_meters": SMS_WORKERS,
    "smsgateway.process_inbound": SMS_WORKERS,
    "smsgateway.sweep_inbound": SMS_WORKERS,
    "smsgateway.send_rekey_inits": SMS_WORKERS,
    "accounts.send_claim_code": SMS_WORKERS,
    "accounts.register_customer": WORKERS,
    "accounts.send_email": WORKERS,
    "audit.verify_chain": WORKERS,
    "fraud.run_detectors": "Fraud detection",
    "billing.run_period": "Billing",
    "billing.start_due_runs": "Billing",
    "billing.bill_chunk": "Billing",
    "billing.finish_run": "Billing",
    "operations.count_read_rates": WORKERS,
    "operations.execute_run": WORKERS,
    "readings.ensure_partitions": WORKERS,
    "readings.apply_retention": "Retention job",
}

# Celery queue -> the workers that consume it.
QUEUES: dict[str, str] = {
    "default": WORKERS,
    "batch": WORKERS,
    "sms": SMS_WORKERS,
    "sms_send": SMS_WORKERS,
}

# Management command of this project -> the element it runs as.
COMMANDS: dict[str, str] = {
    "verify_audit_chain": COMMANDS_PROCESS,
    "run_detectors": COMMANDS_PROCESS,
    "create_db_roles": COMMANDS_PROCESS,
    "run_billing": COMMANDS_PROCESS,
    "create_staff": COMMANDS_PROCESS,
    "totp_code": COMMANDS_PROCESS,
    "sync_roles": COMMANDS_PROCESS,
    "breakglass_totp": COMMANDS_PROCESS,
    "seed_demo": COMMANDS_PROCESS,
    "rewrap_device_keys": COMMANDS_PROCESS,
    "seed_demo_fleet": COMMANDS_PROCESS,
    "seed_demo_operations": COMMANDS_PROCESS,
    "generate_kek": COMMANDS_PROCESS,
    "import_meters": COMMANDS_PROCESS,
    "apply_retention": "Retention job",
}

ACCOUNTS = "PostgreSQL: accounts"
DEVICES = "PostgreSQL: devices and wrapped keys"
READINGS = "PostgreSQL: readings"
SMS = "PostgreSQL: SMS inbox and outbox"
BILLING = "PostgreSQL: billing"
FRAUD = "PostgreSQL: fraud"
AUDIT = "PostgreSQL: audit log"
FRAMEWORK = "PostgreSQL: framework tables"
OPERATIONS = "PostgreSQL: operations"
METER_SD = "Meter store (SD card)"
METER_KEYS = "Meter key files (SD card)"

# Store in the code (Django model label, or meteragent file) -> the model's store.
STORES: dict[str, str] = {
    "admin.LogEntry": FRAMEWORK,
    "auth.Permission": FRAMEWORK,
    "auth.Group": FRAMEWORK,
    "contenttypes.ContentType": FRAMEWORK,
    "sessions.Session": ACCOUNTS,
    "otp_totp.TOTPDevice": ACCOUNTS,
    "accounts.User": ACCOUNTS,
    "accounts.MeterOccupancy": ACCOUNTS,
    "accounts.MeterClaim": ACCOUNTS,
    "accounts.AccountDeletionRequest": ACCOUNTS,
    "account.EmailAddress": ACCOUNTS,
    "account.EmailConfirmation": ACCOUNTS,
    "mfa.Authenticator": ACCOUNTS,
    "usersessions.UserSession": ACCOUNTS,
    "audit.AuditEvent": AUDIT,
    "audit.AuditChainHead": AUDIT,
    "devices.Premises": DEVICES,
    "devices.Meter": DEVICES,
    "devices.Sim": DEVICES,
    "devices.MeterKey": DEVICES,
    "devices.MeterReplacement": DEVICES,
    "devices.KeyRotation": DEVICES,
    "devices.MeterEvent": DEVICES,
    "devices.MeterAlert": DEVICES,
    "readings.Reading": READINGS,
    "readings.ReadingConflict": READINGS,
    "readings.ApiToken": READINGS,
    "readings.DailyReading": READINGS,
    "readings.RetentionStep": READINGS,
    "smsgateway.InboundMessage": SMS,
    "smsgateway.OutboundMessage": SMS,
    "smsgateway.DeliveryReport": SMS,
    "billing.Tariff": BILLING,
    "billing.TariffVersion": BILLING,
    "billing.TouBand": BILLING,
    "billing.TierBlock": BILLING,
    "billing.BillingAccount": BILLING,
    "billing.BillingRun": BILLING,
    "billing.Invoice": BILLING,
    "billing.MeterRead": BILLING,
    "billing.InvoiceLine": BILLING,
    "billing.BillingChunk": BILLING,
    "operations.StaffRun": OPERATIONS,
    "operations.DailyReadRate": OPERATIONS,
    "fraud.Case": FRAUD,
    "fraud.CaseEvent": FRAUD,
    "fraud.WorkOrder": FRAUD,
    "fraud.ReadingsUpload": FRAUD,
    "fraud.Absence": FRAUD,
    "meteragent:store_path": METER_SD,
    "meteragent:pid_path": METER_SD,
    "meteragent:counters_path": METER_SD,
    "meteragent:keys_path": METER_KEYS,
    "meteragent:signing_key_path": METER_KEYS,
}

SURFACES: dict[str, dict[str, str]] = {
    "URL route": ROUTES,
    "Celery task": TASKS,
    "Celery queue": QUEUES,
    "management command": COMMANDS,
    "store": STORES,
}
