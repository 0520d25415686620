from django.core.management.base import BaseCommand, CommandError

from audit.verify import verify_chain


class Command(BaseCommand):
    help = "Verify the audit log's hash chain and name the first broken record."

    def handle(self, *args, **options) -> None:
        report = verify_chain(progress=lambda n: self.stderr.write(f"  checked {n} records…"))
        if not report.ok:
            raise CommandError(
                f"Audit chain BROKEN after {report.checked} good records: {report.reason}"
            )
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} records."))
