"""The gunicorn worker class of the ingest service: uvicorn's, with its own reading of
X-Forwarded-For switched off. The gateway's address is decided in one place, by the project's
rule (TRUSTED_PROXIES, utility.client_address), so the allow-list (S9) cannot
be satisfied by a header uvicorn chose to trust."""

from uvicorn_worker import UvicornWorker


class IngestWorker(UvicornWorker):
    CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "proxy_headers": False, "server_header": False}
