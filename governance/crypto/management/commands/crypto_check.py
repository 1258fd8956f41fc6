"""Probe the key provider: wrap and unwrap with the platform KEK (exit 1 with the reason when it fails)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from governance.crypto.errors import CryptoError
from governance.crypto.keyring import check_provider


class Command(BaseCommand):
    help = "Check that the configured key provider answers (key file readable, HSM reachable, PIN right)."

    def handle(self, *args, **options):
        try:
            result = check_provider(settings.CRYPTO_KEY_PROVIDER)
        except CryptoError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"Key provider {settings.CRYPTO_KEY_PROVIDER}: {result}.")
