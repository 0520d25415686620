from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

STAFF_PREFIXES = ("/admin/", "/staff/")


class StaffOTPRequiredMiddleware:
    """Every admin and staff URL needs a staff session verified by a second factor.

    A backstop under the admin site's own check and the staff views' decorator, so a staff page
    that forgets its decorator is still protected. Only the login and logout pages are exempt.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._exempt: frozenset[str] | None = None

    def _exempt_paths(self) -> frozenset[str]:
        if self._exempt is None:
            self._exempt = frozenset({reverse("admin:login"), reverse("admin:logout")})
        return self._exempt

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if path.startswith(STAFF_PREFIXES) and path not in self._exempt_paths():
            user = request.user
            if not (user.is_authenticated and user.is_staff and user.is_verified()):
                return redirect_to_login(request.get_full_path(), reverse(settings.LOGIN_URL))
        return self.get_response(request)
