"""Flash messages stored as Django does (a signed cookie, the session past its size), under a
cookie named like the others: `__Host-` binds it to this host over HTTPS, so a sibling domain
or a plain-HTTP response cannot plant one."""

from __future__ import annotations

from django.conf import settings
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.messages.storage.fallback import FallbackStorage
from django.contrib.messages.storage.session import SessionStorage


class HostCookieStorage(CookieStorage):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cookie_name = settings.MESSAGES_COOKIE_NAME


class HostFallbackStorage(FallbackStorage):
    storage_classes = (HostCookieStorage, SessionStorage)
