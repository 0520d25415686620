import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from devices.importer import import_manifest


class Command(BaseCommand):
    help = "Import meters and SIMs from a manufacturer manifest (CSV): all rows or none."

    def add_arguments(self, parser):
        parser.add_argument("manifest", type=Path)
        parser.add_argument("--dry-run", action="store_true", help="Check and report only.")

    def handle(self, *args, manifest: Path, dry_run: bool, **options):
        started = time.monotonic()

        def progress(done: int) -> None:
            self.stderr.write(f"\r  {done} rows…", ending="")
            sys.stderr.flush()

        report = import_manifest(
            manifest.read_bytes(),
            by="import_meters command",
            dry_run=dry_run,
            filename=manifest.name,
            progress=progress,
        )
        self.stderr.write("")
        for error in report.file_errors:
            self.stderr.write(f"file: {error}")
        for row in report.bad_rows[:200]:
            self.stderr.write(f"line {row.line} ({row.meter_number}): {'; '.join(row.errors)}")
        if not report.ok:
            raise CommandError(
                f"{len(report.bad_rows)} bad rows of {len(report.rows)}; nothing imported."
            )
        elapsed = time.monotonic() - started
        if dry_run:
            self.stdout.write(f"{len(report.rows)} rows valid ({elapsed:.1f} s); nothing imported.")
        else:
            self.stdout.write(f"Imported {report.imported} meters in {elapsed:.1f} s.")
