"""Every devices admin page refuses the roles that lack its permission (S11)."""

import pytest

from accounts.roles import ROLES

ROLE_NAMES = [role.name for role in ROLES]

# URL → roles allowed to open it (everyone else gets 403).
PAGES = {
    "/admin/devices/meter/": {
        "Support",
        "Provisioning",
        "Billing",
        "Revenue protection",
        "Security admin",
    },
    "/admin/devices/meter/add/": {"Provisioning"},
    "/admin/devices/meter/import/": {"Provisioning"},
    "/admin/devices/meter/{meter}/bundle/": {"Provisioning"},
    "/admin/devices/meter/{meter}/delete/": set(),
    "/admin/devices/sim/": {"Support", "Provisioning", "Revenue protection"},
    "/admin/devices/meterkey/": {"Provisioning", "Security admin"},
    "/admin/devices/keyrotation/": {"Provisioning", "Security admin"},
    "/admin/devices/meteralert/": {"Provisioning", "Revenue protection", "Security admin"},
}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLE_NAMES)
def test_devices_pages_follow_the_role_table(client, make_staff, verified_client, make_meter, role):
    meter = make_meter()
    user, device = make_staff(f"{role.replace(' ', '')}@example.org", roles=[role])
    verified_client(user, device)
    for template, allowed in PAGES.items():
        url = template.format(meter=meter.pk)
        status = client.get(url).status_code
        expected = 200 if role in allowed else 403
        assert status == expected, f"{role} {url}: {status}"
    # POSTs are refused the same way as GETs.
    if role != "Provisioning":
        assert client.post(f"/admin/devices/meter/{meter.pk}/bundle/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        ("schedule_rotation", {"Security admin"}),
        ("suspend", {"Provisioning", "Security admin"}),
        ("decommission", {"Provisioning"}),
    ],
)
def test_bulk_actions_are_offered_only_to_their_roles(
    client, make_staff, verified_client, action, allowed
):
    for role in ROLE_NAMES:
        client.logout()
        user, device = make_staff(f"{action}-{role.replace(' ', '')}@example.org", roles=[role])
        verified_client(user, device)
        response = client.get("/admin/devices/meter/")
        if response.status_code != 200:
            assert role not in allowed
            continue
        form = response.context["action_form"]  # None when no action is offered at all
        offered = form is not None and action in dict(form.fields["action"].choices)
        assert offered == (role in allowed), f"{role}: {action}"
