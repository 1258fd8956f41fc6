"""``createsuperuser`` is refused: the portal has no superusers, only platform administrators."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Disabled. Use create_platform_admin instead."

    def add_arguments(self, parser) -> None:
        parser.add_argument("args", nargs="*")
        parser.add_argument("--noinput", "--no-input", action="store_true")
        parser.add_argument("--email")
        parser.add_argument("--database")

    def handle(self, *args, **options) -> None:
        raise CommandError(
            "Superusers are disabled: every permission comes from a role. Create a platform "
            "administrator with: python manage.py create_platform_admin --organization SLUG --email ADDRESS"
        )
