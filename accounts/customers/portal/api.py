"""The readings API (DRF, read-only): a customer's meters and usage, for the customer's session
or own tokens, and for third parties holding a consent token for one meter.

Unknown meters, other customers' meters and meters outside a consent are the same 404.
"""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import authentication, exceptions, serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from audit.services import record
from readings import selectors
from readings.models import ApiToken, TokenKind

from . import tokens as token_services
from .views import UsageQuery, usage_payload


class ThirdParty:
    """The principal of a consent token: not a user of ours, sees only what the consent opens."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return f"third party {self.token.name!r} (token {self.token.prefix})"

    def get_username(self) -> str:
        return f"third-party:{self.token.prefix}"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        token = token_services.authenticate_token(header[1], now=timezone.now())
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if token.kind == TokenKind.CONSENT:
            return ThirdParty(token), token
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = BearerTokenAuthentication
    name = "BearerToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A customer's own token, or a third party's consent token "
            "(`mpt_…`), from the portal's Data sharing page.",
        }


class TokenRateThrottle(SimpleRateThrottle):
    scope = "api_token"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiToken):
            return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
        return None  # sessions are limited by the portal's own pace


def api_meters(request: Request, *, now: datetime) -> list[selectors.Access]:
    if isinstance(request.user, ThirdParty):
        access = selectors.consent_access(request.auth, now=now)
        return [access] if access else []
    return selectors.customer_meters(request.user)


def api_access(request: Request, number: str, *, now: datetime) -> selectors.Access:
    for access in api_meters(request, now=now):
        if access.meter.number == number:
            if isinstance(request.user, ThirdParty):
                record(
                    "api.consent_read",
                    actor=str(request.user)[:150],
                    target=f"meter:{number}",
                    details={"token": request.auth.prefix},
                )
            return access
    raise Http404("No such meter.")


class BaseApiView(APIView):
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [TokenRateThrottle]


_access_schema = inline_serializer(
    "MeterAccess",
    {
        "number": serializers.CharField(),
        "data_from": serializers.DateTimeField(),
        "data_until": serializers.DateTimeField(allow_null=True),
    },
    many=True,
)


_error_schema = inline_serializer("Error", {"detail": serializers.CharField()})
_messages = serializers.ListField(child=serializers.CharField(), required=False)
_query_errors_schema = inline_serializer(
    "UsageQueryErrors",
    {"resolution": _messages, "start": _messages, "end": _messages, "__all__": _messages},
)
# Every operation can answer these: no or a bad token, too many requests with one token.
_common_errors = {
    401: OpenApiResponse(_error_schema, description="No credentials, or a bad token."),
    429: OpenApiResponse(_error_schema, description="Too many requests with this token."),
}


class MeterList(BaseApiView):
    @extend_schema(
        summary="Meters you may read",
        description="Your meters (customer session or token), or the one meter a consent opens.",
        responses={200: _access_schema, **_common_errors},
    )
    def get(self, request: Request) -> Response:
        meters = api_meters(request, now=timezone.now())
        return Response(
            [{"number": a.meter.number, "data_from": a.start, "data_until": a.end} for a in meters]
        )


class Usage(BaseApiView):
    @extend_schema(
        summary="Usage per hour, day or month",
        description=(
            "Without `start` and `end`, the latest 48 hours, 60 days or 24 months. With them "
            "(both, or neither), from `start` to `end` (exclusive), local dates between 2000 "
            "and next year, `start` before `end`, at most 7 days of hours, 400 days of days or "
            "800 days of months; otherwise a 400 naming the rule. A meter you may not read is "
            "the same 404 as one that does not exist."
        ),
        parameters=[
            OpenApiParameter(
                "resolution", OpenApiTypes.STR, enum=list(selectors.RESOLUTIONS), required=True
            ),
            OpenApiParameter("start", OpenApiTypes.DATE, description="with end; local dates"),
            OpenApiParameter("end", OpenApiTypes.DATE, description="exclusive"),
        ],
        responses={
            200: inline_serializer(
                "Usage",
                {
                    "meter": serializers.CharField(),
                    "resolution": serializers.CharField(),
                    "start": serializers.DateTimeField(),
                    "end": serializers.DateTimeField(),
                    "unit": serializers.CharField(),
                    "buckets": inline_serializer(
                        "UsageBucket",
                        {
                            "start": serializers.DateTimeField(),
                            "kwh": serializers.FloatField(allow_null=True),
                            "estimated": serializers.BooleanField(),
                            "complete": serializers.BooleanField(),
                        },
                        many=True,
                    ),
                },
            ),
            400: OpenApiResponse(_query_errors_schema, description="Parameters refused."),
            404: OpenApiResponse(_error_schema, description="No such meter (for you)."),
            **_common_errors,
        },
    )
    def get(self, request: Request, number: str) -> Response:
        now = timezone.now()
        access = api_access(request, number, now=now)
        query = UsageQuery(request.query_params)
        if not query.is_valid():
            raise exceptions.ValidationError(query.errors)
        return Response(usage_payload(access, query, now))
