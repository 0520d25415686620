"""No access log shows the webhook's shared secret."""

import logging

import pytest


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def server_log():
    logger = logging.getLogger("django.server")
    handler = _Collect()
    logger.addHandler(handler)
    yield logger, handler.lines
    logger.removeHandler(handler)


def test_the_development_server_logs_request_paths_without_their_query(server_log):
    logger, lines = server_log
    # As django.core.servers.basehttp.WSGIRequestHandler.log_message logs a request.
    logger.info(
        '"%s" %s %s', "POST /sms/kannel/inbound?secret=s3cr3t-value&from=%2B4477 HTTP/1.1", 200, 8
    )
    assert lines == ['"POST /sms/kannel/inbound HTTP/1.1" 200 8']
