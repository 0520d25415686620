from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create(self, email: str, password: str | None, **fields) -> "User":
        if not email:
            raise ValueError("An e-mail address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)  # None gives an unusable password
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> "User":
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> "User":
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person: a customer, or a member of staff (is_staff, with role groups)."""

    email = models.EmailField("e-mail address", max_length=254, unique=True)
    full_name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="Staff sign in to the admin and staff pages, always with 2FA."
    )
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()


# --- Customers: meter claims, occupancy, deletion requests ---


class MeterOccupancy(models.Model):
    """A customer's tenure of a meter: they see its readings from `start` to `end` (open: now).

    A successful claim by someone else ends the open occupancy at the claim time (move-out): the
    previous occupant keeps read access to the readings of their own period and nothing newer.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="occupancies")
    meter = models.ForeignKey("devices.Meter", on_delete=models.PROTECT, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=40, blank=True)

    class Meta:
        verbose_name_plural = "meter occupancies"
        indexes = [models.Index(fields=["user", "meter", "-start"])]
        constraints = [
            models.UniqueConstraint(
                fields=["meter"],
                condition=models.Q(end__isnull=True),
                name="occupancy_one_open_per_meter",
            ),
            models.CheckConstraint(
                condition=models.Q(end__isnull=True) | models.Q(end__gte=models.F("start")),
                name="occupancy_end_after_start",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.meter_id} from {self.start:%Y-%m-%d %H:%M}"


class ClaimStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    SENT = "sent", "Code sent to the meter"
    UNDELIVERABLE = "undeliverable", "No code sent"  # unknown/offline meter: never shown
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Too many wrong codes"
    EXPIRED = "expired", "Expired"


class MeterClaim(models.Model):
    """A request to link a meter to an account, proven by a code shown on the meter's display.

    Made whether or not the number exists (so the response never tells); only the server knows
    whether a code was sent. The code is stored as a keyed hash and expires.
    """

    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="claims")
    meter_number = models.CharField(max_length=25)
    meter = models.ForeignKey(
        "devices.Meter", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(
        max_length=16, choices=ClaimStatus.choices, default=ClaimStatus.REQUESTED
    )
    code_hash = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "meter_number", "-created_at"])]

    def __str__(self) -> str:
        return f"claim {self.pk} {self.meter_number} by {self.user_id} ({self.status})"


class AccountDeletionRequest(models.Model):
    """A customer asked for their account to be deleted; staff process it (billing may need
    records kept for a statutory period, so deletion is not instant)."""

    user = models.ForeignKey(
        "accounts.User", null=True, on_delete=models.SET_NULL, related_name="deletion_requests"
    )
    email = models.EmailField()
    reason = models.TextField(blank=True, max_length=2000)
    requested_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    processed_by = models.CharField(max_length=254, blank=True)
    outcome = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"deletion request {self.pk} for {self.email}"
