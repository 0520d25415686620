from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from readings.retention import Policy, RetentionPolicyError, apply_retention


class Command(BaseCommand):
    help = (
        "Apply the readings retention policy now: hourly readings past the billing and dispute "
        "windows become daily totals and are deleted, empty old monthly partitions are dropped. "
        "Every step is audited. The beat task readings.apply_retention runs this daily."
    )

    def handle(self, *args, **options) -> None:
        policy = Policy.from_settings()
        try:
            steps = apply_retention(now=timezone.now(), policy=policy)
        except RetentionPolicyError as exc:
            raise CommandError(f"retention refused: {exc}") from exc
        self.stdout.write(f"hourly readings kept from {policy.boundary(timezone.now()):%Y-%m-%d}")
        for step in steps:
            self.stdout.write(f"{step.get_action_display()}: {step.count} ({step.detail})")
        if not steps:
            self.stdout.write("nothing to do")
