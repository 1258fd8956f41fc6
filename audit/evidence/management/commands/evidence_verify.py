"""Verify an evidence package or a ledger archive offline: the same code as the package's own verify.py."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand

from audit.evidence import offline_verifier as verify


class Command(BaseCommand):
    help = (
        "Verify an evidence package or a ledger archive. Exit 0 when everything holds; 1 naming each "
        "failure; 2 if unreadable."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("package")
        parser.add_argument("--public-key", help="PEM file of the ledger's public key")
        parser.add_argument("--key-id", help="the ledger key id (hex) the file must be signed with")

    def handle(self, *args, **options) -> None:
        argv = [options["package"]]
        for option in ("public_key", "key_id"):
            if options[option]:
                argv += [f"--{option.replace('_', '-')}", options[option]]
        status = verify.main(argv, out=self.stdout)
        if status:
            sys.exit(status)
