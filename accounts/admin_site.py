from django_otp.admin import OTPAdminSite

from .forms import StaffLoginForm


class StaffAdminSite(OTPAdminSite):
    """The admin: only staff whose session is verified by a second factor get in."""

    site_header = "Meter portal — staff"
    site_title = "Meter portal staff"
    index_title = "Administration"
    login_form = StaffLoginForm
    login_template = "admin/staff_login.html"

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)
