"""Rotate the platform's key-encryption key, or a workspace's own (BYOK); rewraps its data keys."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance.crypto.errors import CryptoError
from governance.crypto.services import kek_rotate
from governance.tenancy.models import Workspace


class Command(BaseCommand):
    help = "Rotate a key-encryption key: a new KEK in the provider, every data key rewrapped, the old one retired."

    def add_arguments(self, parser):
        parser.add_argument(
            "--workspace", help="slug of a workspace with its own key (default: the platform's KEK)"
        )
        parser.add_argument("--provider", choices=["local", "pkcs11"], help="move the KEK to this provider")

    def handle(self, *args, workspace=None, provider=None, **options):
        target = None
        if workspace:
            target = Workspace.objects.filter(slug=workspace).first()
            if target is None:
                raise CommandError(f"No workspace with the slug {workspace!r}.")
        try:
            kek = kek_rotate(actor=None, workspace=target, provider=provider)
        except (ValidationError, CryptoError) as error:
            raise CommandError("; ".join(getattr(error, "messages", [str(error)]))) from None
        owner = target.slug if target else "platform"
        self.stdout.write(
            f"{owner} KEK rotated: now v{kek.version} on {kek.get_provider_display()} ({kek.key_ref})."
        )
