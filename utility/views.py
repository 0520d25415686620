from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .health import service_health


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and Redis reachability, for the load balancer and monitoring."""
    checks = service_health()
    healthy = all(state in ("ok", "not configured") for state in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503
    )


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "home.html")
