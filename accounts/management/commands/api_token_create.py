"""Issue an API token for a user; the token is printed once and stored only as a digest."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_create
from governance.core.context import ActorContext, bind_context


class Command(BaseCommand):
    help = "Issue an API token (Authorization: Token <token>)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--hours", type=int, default=24, help="lifetime in hours (0: no expiry)")

    def handle(self, *args, **options) -> None:
        user = User.objects.filter(email=options["email"].strip().lower(), is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['email']}.")
        if options["hours"] < 0:
            raise CommandError("--hours must be 0 or more.")
        with bind_context(ActorContext(user_agent="manage.py api_token_create")):
            token = api_token_create(actor=None, user=user, hours=options["hours"] or None)
        self.stdout.write(f"Token for {user.email} (shown once): {token}")
