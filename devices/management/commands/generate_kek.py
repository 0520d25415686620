from django.core.management.base import BaseCommand

from devices.keystore import generate_kek


class Command(BaseCommand):
    help = (
        "Create a new key-encryption key for meter root keys. Give the public half to every "
        "process (DEVICE_KEK_PUBLIC_KEY), the private half only to the sms workers "
        "(DEVICE_KEK_PRIVATE_KEYS). Nothing is stored by this command."
    )

    def add_arguments(self, parser):
        parser.add_argument("--env", action="store_true", help="Print as environment lines.")

    def handle(self, *args, env, **options):
        kek_id, public, private = generate_kek()
        if env:
            self.stdout.write(f"DEVICE_KEK_PUBLIC_KEY={public}\nDEVICE_KEK_PRIVATE_KEYS={private}")
            return
        self.stdout.write(
            f"KEK id:  {kek_id}\npublic:  {public}\nprivate: {private}\n"
            "Store the private key in a secret store; it is shown only now."
        )
