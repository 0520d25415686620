from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts and staff roles"

    def ready(self) -> None:
        from . import roles, signals  # noqa: F401  (connects login audit receivers)

        # Role groups track the permissions of every app, so refresh them after each migrate.
        post_migrate.connect(roles.sync_roles_after_migrate, dispatch_uid="accounts_sync_roles")
