"""Build an evidence package of one workspace, or of an organisation's own events, for one period
(see docs/evidence.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from audit.evidence.builder import EvidenceError, evidence_package_build
from audit.services import denials_record
from governance.access.decision import decide
from governance.tenancy.models import Organization, Workspace


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} {value!r} is not a date (YYYY-MM-DD).") from None


class Command(BaseCommand):
    help = (
        "Build a signed evidence package (ZIP) of a workspace's ledger events and records for a period "
        "(without --workspace: of the organisation's own events — sign-ins, accounts, SSO, SCIM)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--workspace", help="workspace slug (leave out for the organisation's own events)"
        )
        parser.add_argument(
            "--organization",
            help="organisation slug: when several share the workspace slug, or alone for its own events",
        )
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD (UTC)")
        parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD (UTC, included)")
        parser.add_argument("--out", required=True, help="the ZIP file to write")
        parser.add_argument(
            "--as",
            dest="actor",
            help="e-mail of the auditor it is built for; must hold evidence.order there "
            "(evidence.order_organization for the organisation's own events)",
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

    def _organization(self, slug: str) -> Organization:
        organization = Organization.objects.filter(slug=slug).first()
        if organization is None:
            raise CommandError(f"No organisation {slug!r}.")
        return organization

    def _actor(self, email: str | None, workspace: Workspace | None, organization: Organization):
        if email is None:
            return None
        actor = get_user_model().objects.filter(email__iexact=email, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user {email!r}.")
        if workspace is None:
            decision = decide(actor, "evidence.order_organization", organization)
            refusal = (
                f"{email} may not order evidence of organisation {organization.slug!r}'s own events "
                "(evidence.order_organization is held by its organisation auditors)."
            )
        else:
            decision = decide(actor, "evidence.order", workspace)
            refusal = (
                f"{email} may not order evidence for workspace {workspace.slug!r}: it is outside their "
                "assignment (evidence.order is held by auditors of the workspace)."
            )
        if not decision.allowed:
            denials_record(decisions=[decision])  # a refused sensitive action is always recorded
            raise CommandError(refusal)
        return actor

    def handle(self, *args, **options) -> None:
        first = _day(options["start"], "--from")
        last = _day(options["end"], "--to")
        if last < first:
            raise CommandError(f"The period is inverted: --to {last} is before --from {first}.")
        if options["workspace"]:
            workspace = self._workspace(options["workspace"], options["organization"])
            organization = workspace.organization
        elif options["organization"]:
            workspace, organization = None, self._organization(options["organization"])
        else:
            raise CommandError("Name the workspace (--workspace) or, for its own events, the organisation.")
        actor = self._actor(options["actor"], workspace, organization)
        out = Path(options["out"])
        if not out.parent.is_dir():
            raise CommandError(f"The directory {out.parent} does not exist.")
        start = datetime.combine(first, time.min, tzinfo=UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
        try:
            result = evidence_package_build(
                actor=actor, workspace=workspace, organization=organization, start=start, end=end, out=out
            )
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
