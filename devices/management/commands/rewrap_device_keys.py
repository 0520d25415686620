from django.core.management.base import BaseCommand, CommandError

from audit.services import record
from devices.keystore import KeyStoreError, get_keystore
from devices.models import KeyRotation, MeterKey
from devices.selectors import key_context


class Command(BaseCommand):
    help = (
        "Re-wrap every stored meter key under the current KEK (DEVICE_KEK_PUBLIC_KEY). "
        "DEVICE_KEK_PRIVATE_KEYS must hold the private half of every older KEK still in use. "
        "Resumable: each batch commits on its own and keys already under the current KEK are "
        "skipped, so an interrupted run continues where it stopped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=500)

    def handle(self, *args, batch: int, **options):
        store = get_keystore()
        todo = MeterKey.objects.exclude(kek_id=store.kek_id).exclude(wrapped_key=b"")
        total = todo.count()
        record("devices.rewrap_started", actor="rewrap_device_keys", details={"keys": total})
        done = 0
        try:
            while True:
                keys = list(todo.select_related("meter").order_by("pk")[:batch])
                if not keys:
                    break
                for key in keys:
                    context = key_context(key.meter.number, key.key_id)
                    root = store.unwrap(bytes(key.wrapped_key), context=context, kek_id=key.kek_id)
                    key.wrapped_key = store.wrap(root, context=context)
                    key.kek_id = store.kek_id
                MeterKey.objects.bulk_update(keys, ["wrapped_key", "kek_id"])
                done += len(keys)
                self.stderr.write(f"\r  {done}/{total} keys re-wrapped", ending="")
        except KeyStoreError as exc:
            record(
                "devices.rewrap_failed",
                actor="rewrap_device_keys",
                outcome="failure",
                details={"done": done, "error": str(exc)},
            )
            raise CommandError(f"stopped after {done} keys: {exc}") from exc
        self.stderr.write("")
        open_rotations = KeyRotation.objects.exclude(ephemeral_kek_id=store.kek_id).exclude(
            wrapped_ephemeral=None
        )
        if open_rotations.exists():
            self.stderr.write(
                f"{open_rotations.count()} open rotations still hold an ephemeral key under an "
                "older KEK; keep that KEK's private key until they complete."
            )
        record("devices.rewrap_finished", actor="rewrap_device_keys", details={"keys": done})
        self.stdout.write(f"Re-wrapped {done} keys under KEK {store.kek_id}.")
