from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing import services


class Command(BaseCommand):
    help = (
        "Run (or resume) the billing run of one period: every account whose cycle day is the "
        "period's first day. Re-running never bills an account twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("period_start", type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument(
            "--period-end", type=date.fromisoformat, help="YYYY-MM-DD (default: a month later)"
        )
        parser.add_argument("--batch-size", type=int)

    def handle(self, *args, period_start, period_end=None, batch_size=None, **options):
        def progress(run, done, total):
            self.stdout.write(f"run {run.pk}: {done}/{total} accounts")

        try:
            run = services.run_billing(
                period_start,
                period_end,
                now=timezone.now(),
                by="manage.py run_billing",
                progress=progress,
                batch_size=batch_size,
            )
        except services.BillingError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"run {run.pk} {run.period_start} - {run.period_end}: {run.get_status_display()}, "
            f"{run.accounts_total} accounts, {run.invoices_issued} invoices, {run.failed} failed"
        )
