from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"

    def ready(self) -> None:
        # The services queue the run's tasks by name (tasks.py imports the services), so the
        # tasks must be registered in every process that may run them eagerly (tests, demo).
        from . import tasks  # noqa: F401
