from django.core.mail import mail_admins
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.otp import enrol_totp
from accounts.totp_display import provisioning_text


class Command(BaseCommand):
    help = (
        "Break glass: replace a staff member's lost second factor with a new TOTP device. "
        "The only way past staff 2FA; audited as an alert and reported to the operators."
    )

    def add_arguments(self, parser):
        parser.add_argument("email")
        parser.add_argument("--reason", required=True, help="Why; kept in the audit log.")

    def handle(self, *args, email, reason, **options):
        if len(reason.strip()) < 10:
            raise CommandError("Give a real reason (at least 10 characters).")
        user = User.objects.filter(email__iexact=email, is_staff=True).first()
        if user is None:
            raise CommandError(f"No staff account {email}.")
        device = enrol_totp(user, by="breakglass_totp command", reason=reason, break_glass=True)
        mail_admins(
            "Staff 2FA break-glass used",
            f"The second factor of {user.email} was replaced from the command line.\n"
            f"Reason: {reason}",
        )
        self.stdout.write(f"New second factor for {user.email}; previous devices removed.\n")
        self.stdout.write(provisioning_text(device))
