"""Archive then prune ledger events past their retention (docs/retention.md)."""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime, time

from django.core.management.base import BaseCommand, CommandError

from audit.models import LedgerArchiveState
from audit.retention.prune import PruneRefusedError, prune_plan, prune_resume, prune_start, unfinished_run
from governance.tenancy.models import Organization, Workspace


class Command(BaseCommand):
    help = (
        "Archive, then prune, ledger events past their retention: a signed archive keeps them verifiable "
        "offline; their leaves stay, so the tree and every proof still hold. Shows the plan unless --yes."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--before",
            help="prune only events before this day (YYYY-MM-DD, UTC); refused past a scope's retention "
            "boundary or across a legal hold. Default: every scope up to its own boundary, holds kept.",
        )
        scope = parser.add_mutually_exclusive_group()
        scope.add_argument("--workspace", help="only this workspace (organisation-slug/workspace-slug)")
        scope.add_argument(
            "--organization", help="only this organisation (its workspaces and its own events)"
        )
        parser.add_argument("--yes", action="store_true", help="do it (without: show the plan and stop)")
        parser.add_argument("--resume", action="store_true", help="carry an interrupted run to its end")

    def handle(self, *args, **options) -> None:
        unfinished = unfinished_run()
        if options["resume"]:
            if unfinished is None:
                raise CommandError("No prune run is unfinished.")
            return self._run(unfinished)
        if unfinished is not None:
            raise CommandError(
                f"Prune run {unfinished.uid} is unfinished ({unfinished.get_state_display()}): "
                "run `manage.py ledger_prune --resume` first."
            )
        try:
            plan = prune_plan(
                before=self._day(options["before"]),
                workspace=self._workspace(options["workspace"]),
                organization=self._organization(options["organization"]),
            )
        except PruneRefusedError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(f"Prefix: events 1 to {plan.bound} ({plan.bound_reason}).")
        for line in plan.scopes:
            held = f", {line.held} kept under legal hold" if line.held else ""
            self.stdout.write(f"  {line.label}: {line.chosen} to prune{held} — keeps {line.retention}")
        self.stdout.write(f"Total: {plan.total} events.")
        if not options["yes"]:
            self.stdout.write("Nothing done: run again with --yes to archive and prune.")
            return None
        try:
            run = prune_start(plan=plan, requested_by=f"manage.py ledger_prune ({getpass.getuser()})")
        except PruneRefusedError as error:
            raise CommandError(str(error)) from error
        return self._run(run)

    def _run(self, run) -> None:
        last = [-1]

        def progress(phase: str, done: int, total: int) -> None:
            percent = int(100 * done / total) if total else 100
            if percent != last[0]:
                last[0] = percent
                self.stdout.write(f"  {phase}: {done}/{total} ({percent}%)")

        try:
            run = prune_resume(run=run, progress=progress)
        except PruneRefusedError as error:
            raise CommandError(str(error)) from error
        if run.state != LedgerArchiveState.DONE:
            raise CommandError(f"Run {run.uid} stopped: {run.get_state_display()} {run.error}")
        self.stdout.write(
            f"Pruned {run.events_pruned} events ({run.events_kept} kept under a hold placed meanwhile); "
            f"archive {run.file_name} ({run.file_size} bytes, SHA-256 {run.file_sha256}). "
            "Keep the archive: it is the only copy of the pruned events."
        )

    @staticmethod
    def _day(text: str | None):
        if not text:
            return None
        try:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
        except ValueError as error:
            raise CommandError(f"--before: {text!r} is not a day written YYYY-MM-DD.") from error

    @staticmethod
    def _workspace(text: str | None):
        if not text:
            return None
        organization, _, slug = text.partition("/")
        workspace = Workspace.objects.filter(organization__slug=organization, slug=slug).first()
        if workspace is None:
            raise CommandError(
                f"--workspace: no workspace {text!r} (write organisation-slug/workspace-slug)."
            )
        return workspace

    @staticmethod
    def _organization(text: str | None):
        if not text:
            return None
        organization = Organization.objects.filter(slug=text).first()
        if organization is None:
            raise CommandError(f"--organization: no organisation {text!r}.")
        return organization
