from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from utility.client_address import client_address

from . import context


class AuditContextMiddleware:
    """Makes the client address available to audit records written during the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = context.activate(context.AuditContext(source_ip=client_address(request)))
        try:
            return self.get_response(request)
        finally:
            context.reset(token)
