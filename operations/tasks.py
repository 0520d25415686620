from celery import shared_task


@shared_task(name="operations.execute_run", acks_late=True)
def execute_run(*, run_id: int) -> str:
    """A billing run or scan started from the staff pages."""
    from . import services

    return services.execute_run(run_id).status
