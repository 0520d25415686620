from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .decorators import staff_required
from .roles import ROLES


@staff_required()
def staff_home(request: HttpRequest) -> HttpResponse:
    names = set(request.user.groups.values_list("name", flat=True))
    my_roles = [role for role in ROLES if role.name in names]
    return render(request, "accounts/staff_home.html", {"roles": my_roles})
