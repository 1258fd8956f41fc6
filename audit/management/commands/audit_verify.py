"""Verify the whole ledger: every leaf, every signed tree head, the chain, the columns."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from audit.ledger_verification import ledger_verify, load_trusted, save_trusted
from audit.models import SignedTreeHead
from audit.signing import load_public_key, load_signing_key


class Command(BaseCommand):
    help = "Verify the audit ledger. Exit 0 when intact; 1 with the first bad sequence number otherwise."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--json", action="store_true", help="print a JSON report")
        parser.add_argument(
            "--public-key",
            action="append",
            default=[],
            help="PEM public key file(s) to trust instead of the configured signing key",
        )
        parser.add_argument(
            "--state",
            default=None,
            help="file remembering the last verified head (rollback detection); "
            "default var/ledger-verified-head.json",
        )
        parser.add_argument("--no-state", action="store_true", help="neither read nor write the state file")

    def handle(self, *args, **options) -> None:
        keys = None
        if options["public_key"]:
            try:
                keys = [load_public_key(Path(path).read_bytes()) for path in options["public_key"]]
            except (OSError, ValueError) as error:
                raise CommandError(f"Cannot read the public key: {error}") from None
        else:
            keys = [load_signing_key().public_key()]
        state = (
            None
            if options["no_state"]
            else Path(options["state"] or settings.VAR_DIR / "ledger-verified-head.json")
        )
        trusted = load_trusted(state) if state else None

        def progress(count: int) -> None:
            if not options["json"]:
                self.stderr.write(f"  … {count:,} events verified")

        report = ledger_verify(public_keys=keys, trusted_head=trusted, progress=progress)
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        elif report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Ledger intact: {report.events:,} events, {report.heads:,} signed tree heads, "
                    f"root {report.root.hex()}."
                )
            )
            if report.unsigned_tail:
                self.stdout.write(f"{report.unsigned_tail} sealed events await their next signed head.")
            if report.unsealed:
                self.stdout.write(f"{report.unsealed} events await sealing.")
        else:
            first = report.first
            where = f"at sequence {first.sequence}" if first.sequence else f"at tree head #{first.head}"
            self.stderr.write(self.style.ERROR(f"Ledger verification FAILED {where}: {first.reason}"))
        if report.ok and state is not None:
            latest = SignedTreeHead.objects.order_by("-number").first()
            if latest is not None:
                save_trusted(state, latest)
        if not report.ok:
            sys.exit(1)
