from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from utility.readonly_admin import ReadOnlyModelAdmin

from .customers.services import process_deletion_request
from .models import AccountDeletionRequest, User


class UserChangeFormForEmail(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class UserCreationFormForEmail(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserChangeFormForEmail
    add_form = UserCreationFormForEmail
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    filter_horizontal = ["groups", "user_permissions"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal", {"fields": ("full_name",)}),
        ("Access", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        ("Direct permissions", {"fields": ("user_permissions",)}),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)

    def has_change_permission(self, request, obj=None) -> bool:
        # Only a superuser may change a superuser, or change their own account here: otherwise a
        # security admin could raise themselves, or reset a superuser's password and take over.
        protected = obj is not None and (obj.is_superuser or obj.pk == request.user.pk)
        if protected and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def user_change_password(self, request, id, form_url=""):
        # Passwords are set by their owners (reset by e-mail) or by a superuser, never by a
        # role: a password plus a second factor one controls would be an account takeover.
        if not request.user.is_superuser:
            raise PermissionDenied
        return super().user_change_password(request, id, form_url)

    def get_readonly_fields(self, request, obj=None):
        readonly = ["last_login", "date_joined"]
        if not request.user.is_superuser:
            # A security admin assigns roles (groups) but cannot mint superusers or grant
            # permissions outside the role table.
            readonly += ["is_superuser", "user_permissions", "password"]
        return readonly


@admin.register(AccountDeletionRequest)
class AccountDeletionRequestAdmin(ReadOnlyModelAdmin):
    """Customers' deletion requests, processed by a security admin with one audited action."""

    list_display = ["email", "requested_at", "processed_at", "processed_by", "outcome"]
    list_filter = ["processed_at"]
    search_fields = ["email"]
    actions = ["process"]

    def has_process_permission(self, request) -> bool:
        return request.user.has_perm("accounts.change_accountdeletionrequest")

    @admin.action(description="Close these accounts (readings are kept)", permissions=["process"])
    def process(self, request, queryset):
        done = 0
        for deletion in queryset.filter(processed_at__isnull=True).select_related("user"):
            process_deletion_request(deletion, by=request.user, now=timezone.now())
            done += 1
        self.message_user(request, f"Closed {done} accounts.", messages.SUCCESS)
