from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from fraud.detectors import DETECTOR_NAMES
from fraud.services import run_scan


class Command(BaseCommand):
    help = "Run the revenue-protection detectors now and open or refresh cases."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only", action="append", choices=DETECTOR_NAMES, help="run only this detector"
        )
        parser.add_argument("--now", help="ISO time to scan as of (default: now)")

    def handle(self, *args, only=None, now=None, verbosity=1, **options):
        if now:
            try:
                moment = datetime.fromisoformat(now)
            except ValueError as exc:
                raise CommandError(f"--now: {exc}") from None
            if timezone.is_naive(moment):
                raise CommandError("--now needs a time zone, e.g. 2026-01-31T06:00+00:00")
        else:
            moment = timezone.now()
        progress = (lambda m: self.stdout.write(m)) if verbosity >= 1 else None
        report = run_scan(now=moment, only=only, actor="run_detectors", progress=progress)
        for run in report.runs:
            self.stdout.write(
                f"{run.name:18} findings {run.findings:6}  opened {run.opened:5}  "
                f"updated {run.updated:5}  suppressed {run.suppressed:4}  "
                f"detect {run.detect_seconds:7.2f} s  cases {run.apply_seconds:6.2f} s"
            )
        self.stdout.write(self.style.SUCCESS(f"{report.opened} case(s) opened"))
