"""Logging filters."""

from __future__ import annotations

import logging
import re

_QUERY = re.compile(r"\?\S*")


class StripQueryString(logging.Filter):
    """Drop the query string from request lines: the SMS gateway's shared secret travels in the
    webhook's URL, so no access log may show one (the development server's `django.server`
    log; gunicorn and nginx are configured to log paths only)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args and isinstance(record.args[0], str):
            record.args = (_QUERY.sub("", record.args[0]), *record.args[1:])
        record.msg = _QUERY.sub("", record.msg) if isinstance(record.msg, str) else record.msg
        return True
