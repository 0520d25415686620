from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.caps import CapExceeded
from utility.readonly_admin import ReadOnlyModelAdmin

from . import services
from .forms import ManifestImportForm
from .identifiers import format_meter_number
from .importer import import_manifest
from .models import (
    KeyRotation,
    KeyState,
    Meter,
    MeterAlert,
    MeterKey,
    MeterReplacement,
    Premises,
    Sim,
)


def _perm(codename: str):
    def check(self, request: HttpRequest) -> bool:
        return request.user.has_perm(f"devices.{codename}")

    return check


def _run_action(model_admin: admin.ModelAdmin, request, func, success: str) -> None:
    """Run a device service for an admin action: refusals and caps become an error message."""
    try:
        count = func()
    except (services.DeviceError, CapExceeded) as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
    else:
        model_admin.message_user(request, success.format(count=count), messages.SUCCESS)


RACED_SAVE = (
    "Another request saved the same value at the same moment; nothing was saved here. "
    "Check the list before you try again."
)


class UniqueRaceSafeAdmin(admin.ModelAdmin):
    """The form checks unique values before saving, but two staff saving the same new value at
    the same moment both pass that check; the loser's save then violates the constraint. It
    is answered with a message and the form again (where a resubmission gets the form's own
    duplicate error), not a server error; the admin's transaction has rolled back."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except IntegrityError:
            self.message_user(request, RACED_SAVE, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class MeterKeyInline(admin.TabularInline):
    """Key metadata only: the wrapped key itself is never shown."""

    model = MeterKey
    fields = ["key_id", "state", "origin", "kek_id", "created_at", "activated_at", "retired_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Meter)
class MeterAdmin(UniqueRaceSafeAdmin):
    list_display = ["display_number", "status", "sim", "active_key", "last_message_at", "premises"]
    list_filter = ["status", "manufacturer", "batch"]
    search_fields = ["number", "sim__msisdn", "sim__iccid", "premises__reference"]
    list_select_related = ["sim", "premises"]
    readonly_fields = [
        "status",
        "registered_at",
        "status_changed_at",
        "last_message_at",
        "rejected_while_suspended",
        "health",
    ]
    fields = ["number", "manufacturer", "model", "batch", "premises", *readonly_fields]
    inlines = [MeterKeyInline]
    actions = ["schedule_rotation", "suspend", "decommission"]
    change_list_template = "admin/devices/meter/change_list.html"
    change_form_template = "admin/devices/meter/change_form.html"

    has_import_meters_permission = _perm("import_meters")
    has_issue_bundle_permission = _perm("issue_bundle")
    has_rotate_keys_permission = _perm("rotate_keys")
    has_suspend_meter_permission = _perm("suspend_meter")
    has_decommission_meter_permission = _perm("decommission_meter")

    def get_readonly_fields(self, request, obj=None):
        # The number is printed on the meter and bound into its wrapped keys: fixed once saved.
        fields = list(super().get_readonly_fields(request, obj))
        return [*fields, "number"] if obj is not None else fields

    @admin.display(description="meter number", ordering="number")
    def display_number(self, meter: Meter) -> str:
        return format_meter_number(meter.number)

    @admin.display(description="active key")
    def active_key(self, meter: Meter):
        key = meter.keys.filter(state=KeyState.ACTIVE).first()
        return key.key_id if key else "—"

    @admin.display(description="health at a glance")
    def health(self, meter: Meter):
        keys = ", ".join(f"{k.key_id}: {k.state}" for k in meter.keys.order_by("key_id")) or "none"
        sim = getattr(meter, "sim", None)
        rotation = meter.rotations.order_by("-pk").first()
        return format_html(
            "<dl><dt>Last message</dt><dd>{}</dd><dt>Keys</dt><dd>{}</dd><dt>SIM</dt><dd>{}</dd>"
            "<dt>Latest rotation</dt><dd>{}</dd><dt>Rejected while suspended</dt><dd>{}</dd></dl>",
            meter.last_message_at or "never",
            keys,
            f"{sim.msisdn} / {sim.iccid}" if sim else "none",
            rotation.get_state_display() if rotation else "none",
            meter.rejected_while_suspended,
        )

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="devices_meter_import",
            ),
            path(
                "<int:pk>/bundle/",
                self.admin_site.admin_view(self.bundle_view),
                name="devices_meter_bundle",
            ),
            *super().get_urls(),
        ]

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_import_meters_permission(request):
            raise PermissionDenied
        report = None
        form = ManifestImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["manifest"]
            report = import_manifest(
                upload.read(),
                by=request.user,
                dry_run=form.cleaned_data["dry_run"],
                filename=upload.name,
            )
            if report.ok and not report.dry_run:
                self.message_user(request, f"Imported {report.imported} meters.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:devices_meter_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import a manufacturer manifest",
            "form": form,
            "report": report,
            "bad_rows": report.bad_rows[:500] if report else [],
        }
        return TemplateResponse(request, "admin/devices/meter/import.html", context)

    def bundle_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_issue_bundle_permission(request):
            raise PermissionDenied
        meter = get_object_or_404(Meter, pk=pk)
        if request.method == "POST":
            try:
                bundle = services.issue_bundle(meter, by=request.user)
            except (services.DeviceError, CapExceeded) as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return HttpResponseRedirect(reverse("admin:devices_meter_change", args=[pk]))
            response = HttpResponse(bundle, content_type="application/json")
            response["Content-Disposition"] = f'attachment; filename="bundle-{meter.number}.json"'
            response["Cache-Control"] = "no-store"
            return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Provisioning bundle for {meter}",
            "meter": meter,
            "pending": meter.keys.filter(state=KeyState.PENDING, origin="bundle").exists(),
        }
        return TemplateResponse(request, "admin/devices/meter/bundle.html", context)

    @admin.action(description="Schedule key rotation", permissions=["rotate_keys"])
    def schedule_rotation(self, request, queryset):
        _run_action(
            self,
            request,
            lambda: len(services.schedule_rotations(queryset, by=request.user)),
            "Scheduled {count} key rotations.",
        )

    @admin.action(description="Suspend", permissions=["suspend_meter"])
    def suspend(self, request, queryset):
        _run_action(
            self,
            request,
            lambda: services.suspend_meters(queryset, by=request.user, reason="staff action"),
            "Suspended {count} meters.",
        )

    @admin.action(description="Decommission (destroys keys)", permissions=["decommission_meter"])
    def decommission(self, request, queryset):
        _run_action(
            self,
            request,
            lambda: services.decommission_meters(queryset, by=request.user, reason="staff action"),
            "Decommissioned {count} meters.",
        )


@admin.register(Sim)
class SimAdmin(UniqueRaceSafeAdmin):
    list_display = ["msisdn", "iccid", "meter", "created_at"]
    search_fields = ["msisdn", "iccid", "meter__number"]
    raw_id_fields = ["meter"]


@admin.register(Premises)
class PremisesAdmin(UniqueRaceSafeAdmin):
    list_display = ["reference", "postcode", "address"]
    search_fields = ["reference", "postcode", "address"]


@admin.register(MeterKey)
class MeterKeyAdmin(ReadOnlyModelAdmin):
    list_display = ["meter", "key_id", "state", "origin", "kek_id", "created_at", "activated_at"]
    list_filter = ["state", "origin", "kek_id"]
    search_fields = ["meter__number"]
    fields = [
        "meter",
        "key_id",
        "state",
        "origin",
        "kek_id",
        "created_at",
        "activated_at",
        "retired_at",
    ]


@admin.register(KeyRotation)
class KeyRotationAdmin(ReadOnlyModelAdmin):
    list_display = [
        "meter",
        "new_key_id",
        "state",
        "init_attempts",
        "last_sent_at",
        "requested_by",
        "created_at",
    ]
    list_filter = ["state"]
    search_fields = ["meter__number"]
    list_select_related = ["meter", "old_key"]
    actions = ["cancel", "restart"]

    has_rotate_keys_permission = _perm("rotate_keys")

    @admin.action(description="Cancel rotation (meter keeps its key)", permissions=["rotate_keys"])
    def cancel(self, request, queryset):
        _run_action(
            self,
            request,
            lambda: services.cancel_rotations(queryset, by=request.user),
            "Cancelled {count} key rotations.",
        )

    @admin.action(description="Restart stalled rotation", permissions=["rotate_keys"])
    def restart(self, request, queryset):
        _run_action(
            self,
            request,
            lambda: services.restart_rotations(queryset, by=request.user),
            "Restarted {count} key rotations; the key agreement goes out again.",
        )

    fields = [
        "meter",
        "old_key",
        "new_key_id",
        "state",
        "init_attempts",
        "requested_by",
        "created_at",
        "last_sent_at",
        "completed_at",
    ]


@admin.register(MeterAlert)
class MeterAlertAdmin(ReadOnlyModelAdmin):
    """Open conditions on meters. Silence and a stalled rotation close themselves when the
    meter is heard or the rotation is dealt with; staff close the others once looked into."""

    list_display = ["meter", "kind", "opened_at", "closed_at", "closed_by"]
    list_filter = ["kind", ("closed_at", admin.EmptyFieldListFilter)]
    search_fields = ["meter__number"]
    list_select_related = ["meter"]
    actions = ["close"]

    has_close_alert_permission = _perm("close_alert")

    @admin.action(description="Close (looked into)", permissions=["close_alert"])
    def close(self, request, queryset):
        _run_action(
            self,
            request,
            lambda: services.close_alerts_by_staff(queryset, by=request.user, now=timezone.now()),
            "Closed {count} alerts.",
        )


@admin.register(MeterReplacement)
class MeterReplacementAdmin(ReadOnlyModelAdmin):
    list_display = ["old_meter", "new_meter", "premises", "replaced_at"]
