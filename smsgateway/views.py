"""The gateway-facing endpoints. Answers tell the gateway whether to retry: 200 once the message
is stored ("queued <id>", or "duplicate" for a retry of a stored one), 503 when it could not be
stored (the gateway keeps it and retries), 4xx when the request is not from our gateway.
Verification happens after the answer, on the sms workers; its outcome is on the stored row."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .adapters import ADAPTERS, GatewayRejected, GatewayRequest
from .intake import ANSWER_CONTENT_TYPE, accept, refused
from .outbox import delivery


@csrf_exempt
@require_http_methods(["POST"])
def inbound(request: HttpRequest, gateway: str) -> HttpResponse:
    if gateway not in ADAPTERS or not settings.SMS_INGEST_ENABLED:
        raise Http404
    status, body = accept(gateway, GatewayRequest.from_django(request))
    return HttpResponse(body, status=status, content_type=ANSWER_CONTENT_TYPE)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def delivery_report(request: HttpRequest, gateway: str) -> HttpResponse:
    adapter = ADAPTERS.get(gateway)
    if adapter is None or not settings.SMS_INGEST_ENABLED:
        raise Http404
    gateway_request = GatewayRequest.from_django(request)
    try:
        adapter.authenticate(gateway_request)
        outbound_id = int(request.GET.get("id", ""))
        status = int(request.GET.get("status", ""))
    except GatewayRejected as exc:
        refused(gateway_request, gateway, exc)
        return HttpResponse(exc.reason, status=exc.status, content_type="text/plain")
    except ValueError:
        return HttpResponse("bad report", status=400, content_type="text/plain")
    delivery.record_delivery_report(outbound_id, status, now=timezone.now())
    return HttpResponse("ok", content_type="text/plain")
