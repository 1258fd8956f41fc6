"""Build an evidence package of one workspace for one period (see docs/evidence.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit.evidence.builder import EvidenceError, evidence_package_build
from audit.services import denials_record
from governance.access.decision import decide
from governance.tenancy.models import Workspace


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = "Build a signed evidence package (ZIP) of a workspace's ledger events and records for a period."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workspace", required=True, help="workspace slug")
        parser.add_argument("--organization", help="organisation slug, when several share the workspace slug")
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (UTC, included)")
        parser.add_argument("--out", required=True, help="the ZIP file to write")
        parser.add_argument(
            "--as", dest="actor", help="e-mail of the auditor it is built for; must hold evidence.order there"
        )

    def _workspace(self, slug: str, organization: str | None) -> Workspace:
        workspaces = Workspace.objects.select_related("organization").filter(slug=slug)
        if organization:
            workspaces = workspaces.filter(organization__slug=organization)
        found = list(workspaces[:2])
        if not found:
            where = f" in organisation {organization!r}" if organization else ""
            raise CommandError(f"No workspace {slug!r}{where}.")
        if len(found) > 1:
            raise CommandError(
                f"Several organisations have a workspace {slug!r}; name one with --organization."
            )
        return found[0]

    def _actor(self, email: str | None, workspace: Workspace):
        if email is None:
            return None
        actor = get_user_model().objects.filter(email__iexact=email, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user {email!r}.")
        decision = decide(actor, "evidence.order", workspace)
        if not decision.allowed:
            denials_record(decisions=[decision])  # a refused sensitive action is always recorded
            raise CommandError(
                f"{email} may not order evidence for workspace {workspace.slug!r}: it is outside their "
                "assignment (evidence.order is held by auditors of the workspace)."
            )
        return actor

    def handle(self, *args, **options) -> None:
        first = _day(options["start"], "--from")
        last = _day(options["end"], "--to")
        if last < first:
            raise CommandError(f"The period is inverted: --to {last} is before --from {first}.")
        workspace = self._workspace(options["workspace"], options["organization"])
        actor = self._actor(options["actor"], workspace)
        out = Path(options["out"])
        if not out.parent.is_dir():
            raise CommandError(f"The directory {out.parent} does not exist.")
        start = datetime.combine(first, time.min, tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        try:
            result = evidence_package_build(actor=actor, workspace=workspace, start=start, end=end, out=out)
        except EvidenceError as error:
            raise CommandError(str(error)) from None
        exceptions = sum(finding.count for finding in result.findings.exceptions.values())
        self.stdout.write(
            self.style.SUCCESS(
                f"Wrote {result.path}: {result.events} events proven against signed tree head "
                f"#{result.head_number}; {exceptions} exception(s) in summary.html; manifest SHA-256 "
                f"{result.manifest_sha256}."
            )
        )
