"""Seal pending ledger events now (or keep sealing with --loop)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from audit.sealing import ledger_seal_all, seal_loop


class Command(BaseCommand):
    help = "Seal committed, unsealed ledger events and sign a tree head."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--loop", action="store_true", help="keep sealing every second until stopped")
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, **options) -> None:
        if options["loop"]:
            self.stdout.write(f"Sealing every {options['interval']:.1f}s; stop with Ctrl-C.")
            try:
                seal_loop(interval=options["interval"])
            except KeyboardInterrupt:
                return
        result = ledger_seal_all()
        head = f"; signed tree head #{result.head.number}" if result.head else ""
        self.stdout.write(
            f"Sealed {result.sealed} events ({result.row_changes} captured row changes); "
            f"tree size {result.tree_size}{head}."
        )
