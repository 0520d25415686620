"""The gateway-facing endpoints. Answers tell the gateway whether to retry: 200 for anything
processed (accepted, rejected or a duplicate), 503 when the message could not be stored or
processed for a transient reason, 4xx when the request is not from our gateway."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from audit.context import client_ip
from audit.models import Outcome
from audit.services import record

from . import outbox
from .adapters import ADAPTERS, GatewayRejected
from .ingest import receive

logger = logging.getLogger("smsgateway")


def _gateway_refused(request: HttpRequest, gateway: str, exc: GatewayRejected) -> HttpResponse:
    logger.warning("%s request from %s refused: %s", gateway, client_ip(request), exc.reason)
    try:
        record(
            "sms.gateway_refused",
            actor="anonymous",
            target=gateway,
            outcome=Outcome.DENIED,
            details={"reason": exc.reason, "path": request.path},
        )
    except DatabaseError:
        logger.exception("could not audit a refused gateway request")
    return HttpResponse(exc.reason, status=exc.status, content_type="text/plain")


@csrf_exempt
@require_http_methods(["POST"])
def inbound(request: HttpRequest, gateway: str) -> HttpResponse:
    adapter = ADAPTERS.get(gateway)
    if adapter is None or not settings.SMS_INGEST_ENABLED:
        raise Http404
    try:
        adapter.authenticate(request)
        sms = adapter.parse(request)
    except GatewayRejected as exc:
        return _gateway_refused(request, gateway, exc)
    try:
        result = receive(sms, now=timezone.now())
    except DatabaseError:
        logger.exception(
            "inbound SMS from %s not processed; asking the gateway to retry", sms.sender
        )
        return HttpResponse("temporarily unavailable", status=503, content_type="text/plain")
    message = result.message
    body = "duplicate" if result.duplicate else f"{message.status} {message.reason}".strip()
    return HttpResponse(body, content_type="text/plain")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def delivery_report(request: HttpRequest, gateway: str) -> HttpResponse:
    adapter = ADAPTERS.get(gateway)
    if adapter is None or not settings.SMS_INGEST_ENABLED:
        raise Http404
    try:
        adapter.authenticate(request)
        outbound_id = int(request.GET.get("id", ""))
        status = int(request.GET.get("status", ""))
    except GatewayRejected as exc:
        return _gateway_refused(request, gateway, exc)
    except ValueError:
        return HttpResponse("bad report", status=400, content_type="text/plain")
    outbox.record_delivery_report(outbound_id, status, now=timezone.now())
    return HttpResponse("ok", content_type="text/plain")
