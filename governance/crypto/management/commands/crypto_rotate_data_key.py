"""Rotate a workspace's data key: new values use the new key at once; a job re-encrypts the rest."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from governance.crypto.errors import CryptoError
from governance.crypto.models import Purpose
from governance.crypto.services import data_key_rotate
from governance.tenancy.models import Workspace


class Command(BaseCommand):
    help = "Rotate a workspace's data key and start the background re-encryption (see docs/keys.md)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="the workspace's slug")
        parser.add_argument("--purpose", required=True, choices=[Purpose.GENERAL, Purpose.CREDENTIALS])

    def handle(self, *args, workspace, purpose, **options):
        target = Workspace.objects.filter(slug=workspace).first()
        if target is None:
            raise CommandError(f"No workspace with the slug {workspace!r}.")
        try:
            job = data_key_rotate(actor=None, workspace=target, purpose=purpose)
        except (ValidationError, CryptoError) as error:
            raise CommandError("; ".join(getattr(error, "messages", [str(error)]))) from None
        job.refresh_from_db()
        self.stdout.write(
            f"Rotation job {job.pk}: v{job.from_key.version} → v{job.to_key.version}, {job.done} of {job.total} "
            f"values re-encrypted, {job.get_status_display().lower()}."
        )
