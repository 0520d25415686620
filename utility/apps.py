from django.contrib.admin.apps import AdminConfig


class UtilityAdminConfig(AdminConfig):
    """The admin, on a site that requires a verified second factor for every page."""

    default_site = "accounts.admin_site.StaffAdminSite"
