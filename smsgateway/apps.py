from django.apps import AppConfig


class SmsGatewayConfig(AppConfig):
    name = "smsgateway"
    verbose_name = "SMS gateway"

    def ready(self) -> None:
        # The webhook and the outbox queue this app's tasks by name (tasks.py sits above them
        # in the import layers), so the tasks must be registered in every process that may
        # run them eagerly (the tests, the demo), not only in the workers that discover them.
        from . import tasks  # noqa: F401
