"""Staff roles: one group per role, holding exactly the permissions the role needs (S11).

Each app adds the permissions its models need to the roles here when it lands. `sync_roles`
makes the groups match this table exactly, removing anything granted by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Role:
    name: str
    description: str
    permissions: frozenset[str]  # "app_label.codename"


SUPPORT = "Support"
PROVISIONING = "Provisioning"
BILLING = "Billing"
REVENUE_PROTECTION = "Revenue protection"
FIELD_ENGINEER = "Field engineer"
SECURITY_ADMIN = "Security admin"

ROLES: tuple[Role, ...] = (
    Role(
        SUPPORT,
        "Answers customers: looks up their accounts and meters; changes nothing.",
        frozenset(
            {
                "accounts.view_user",
                "accounts.view_meteroccupancy",
                "accounts.view_meterclaim",
                "accounts.view_accountdeletionrequest",
                "devices.view_meter",
                "devices.view_sim",
                "devices.view_premises",
                "readings.view_reading",
                "billing.view_invoice",
                "billing.view_billingaccount",
                "billing.view_billingrun",
                "billing.view_tariff",
                "billing.view_tariffversion",
            }
        ),
    ),
    Role(
        PROVISIONING,
        "Registers meters and SIMs, generates keys and provisioning bundles, and sends failed "
        "SMS to meters again.",
        frozenset(
            {
                "devices.view_meter",
                "devices.add_meter",
                "devices.change_meter",
                "devices.import_meters",
                "devices.issue_bundle",
                "devices.suspend_meter",
                "devices.decommission_meter",
                "devices.view_sim",
                "devices.add_sim",
                "devices.change_sim",
                "devices.view_premises",
                "devices.add_premises",
                "devices.change_premises",
                "devices.view_meterkey",
                "devices.view_keyrotation",
                "devices.view_meterreplacement",
                "devices.view_meteralert",
                "smsgateway.view_inboundmessage",
                "smsgateway.view_outboundmessage",
                "smsgateway.send_again",
            }
        ),
    ),
    Role(
        BILLING,
        "Runs billing and issues invoices and credit notes.",
        frozenset(
            {
                "accounts.view_user",
                "devices.view_meter",
                "devices.view_premises",
                "billing.view_invoice",
                "billing.issue_credit_note",
                "billing.view_billingrun",
                "billing.start_run",
                "billing.view_billingaccount",
                "billing.add_billingaccount",
                "billing.change_billingaccount",
                "billing.view_tariff",
                "billing.add_tariff",
                "billing.change_tariff",
                "billing.view_tariffversion",
                "billing.add_tariffversion",
                "billing.change_tariffversion",
                "billing.view_touband",
                "billing.add_touband",
                "billing.change_touband",
                "billing.view_tierblock",
                "billing.add_tierblock",
                "billing.change_tierblock",
            }
        ),
    ),
    Role(
        REVENUE_PROTECTION,
        "Works fraud cases and dispatches field engineers.",
        frozenset(
            {
                "devices.view_meter",
                "devices.view_sim",
                "devices.view_premises",
                "devices.view_meteralert",
                "fraud.view_case",
                "fraud.work_case",
                "fraud.dispatch_engineer",
                "fraud.approve_dispatch",
                "fraud.view_workorder",
                "fraud.view_readingsupload",
                "operations.start_scan",
            }
        ),
    ),
    Role(
        FIELD_ENGINEER,
        "Sees only their own dispatch list; no admin access.",
        frozenset({"fraud.field_work"}),
    ),
    Role(
        SECURITY_ADMIN,
        "Reads the audit log, assigns staff roles, and withdraws lost second factors (new ones "
        "come only from create_staff or the audited break-glass command).",
        frozenset(
            {
                "accounts.view_user",
                "accounts.change_user",
                "auth.view_group",
                "audit.view_auditevent",
                "otp_totp.view_totpdevice",
                "otp_totp.delete_totpdevice",
                "devices.view_meter",
                "devices.view_meterkey",
                "devices.view_keyrotation",
                "devices.rotate_keys",
                "devices.suspend_meter",
                "devices.view_meteralert",
                "devices.close_alert",
                "accounts.view_accountdeletionrequest",
                "accounts.change_accountdeletionrequest",
            }
        ),
    ),
)

ROLE_NAMES = frozenset(role.name for role in ROLES)


def _permission(label: str) -> Permission:
    app_label, codename = label.split(".", 1)
    try:
        return Permission.objects.get(content_type__app_label=app_label, codename=codename)
    except Permission.DoesNotExist as exc:
        raise ImproperlyConfigured(f"role permission {label} does not exist") from exc


@transaction.atomic
def sync_roles() -> list[Group]:
    """Create or correct every role group so it holds exactly its declared permissions."""
    groups = []
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role.name)
        group.permissions.set([_permission(label) for label in sorted(role.permissions)])
        groups.append(group)
    return groups


def sync_roles_after_migrate(sender, app_config=None, using="default", apps=None, **kwargs):
    # post_migrate fires per app; run once, for this app, after making sure every app's
    # permissions exist (Django creates them app by app, in the same signal).
    if app_config is None or app_config.name != "accounts" or using != "default":
        return
    for config in global_apps.get_app_configs():
        create_permissions(config, verbosity=0, using=using)
    sync_roles()
