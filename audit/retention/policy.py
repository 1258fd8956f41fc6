"""How long events are kept at least, per scope, and why.

A workspace keeps its events for the longest of: the platform's floor
(``LEDGER_RETENTION_FLOOR_MONTHS``), the minimum of every framework in its retention policy, and
its own minimum if it set one. An organisation's own events (sign-ins, accounts, SSO, SCIM) are
kept as long as its longest-keeping workspace keeps its events; events of no organisation (the
platform's own) for the floor. The minima below are the rules' own figures; where a framework
fixes none, the figure is the convention stated with it.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from audit.models import RetentionFramework, RetentionPolicy
from governance.tenancy.models import Workspace

# The lowest floor any configuration may set: the database refuses to prune younger events
# whatever the settings say (audit.triggers.RETENTION_HARD_FLOOR).
HARD_FLOOR_MONTHS = 6

FRAMEWORK_MINIMA: dict[str, tuple[int, str]] = {
    RetentionFramework.PCI_DSS: (
        12,
        "PCI DSS v4.0 requirement 10.5.1: audit log history is retained for at least 12 months",
    ),
    RetentionFramework.HIPAA: (
        72,
        "HIPAA, 45 CFR 164.316(b)(2)(i): required documentation is retained for 6 years",
    ),
    RetentionFramework.SOX: (
        84,
        "SOX section 802 and SEC rule 17 CFR 210.2-06: audit records are retained for 7 years",
    ),
    RetentionFramework.EU_AI_ACT_HIGH_RISK: (
        6,
        "EU AI Act, Articles 19(1) and 26(6): logs of a high-risk AI system are kept for at least 6 months",
    ),
    RetentionFramework.SOC2: (
        12,
        "SOC 2 Type II: the report's observation period, customarily 12 months, whose events the auditor samples",
    ),
    RetentionFramework.ISO27001: (
        36,
        "ISO/IEC 27001: the three-year certification cycle (certification audit and two surveillance audits), "
        "by convention; the standard itself leaves the period to the organisation",
    ),
}


@dataclass(frozen=True)
class Retention:
    """A minimum retention in months, with every rule that asks for one (the longest first)."""

    months: int
    reasons: tuple[tuple[int, str], ...]

    @property
    def deciding(self) -> tuple[str, ...]:
        """The reasons that set the period (the longest minimum; several when they tie)."""
        return tuple(text for months, text in self.reasons if months == self.months)

    def cutoff(self, now: datetime) -> datetime:
        """Events that occurred before this moment are past their retention."""
        return months_before(now, self.months)

    def describe(self) -> str:
        years, months = divmod(self.months, 12)
        span = " ".join(
            part
            for part in (
                f"{years} year{'s' if years != 1 else ''}" if years else "",
                f"{months} month{'s' if months != 1 else ''}" if months else "",
            )
            if part
        )
        return f"{span} ({'; '.join(self.deciding)})"


def months_before(moment: datetime, months: int) -> datetime:
    """The same time of day ``months`` calendar months earlier (the 31st becomes the month's last day)."""
    index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def floor_months() -> int:
    return max(int(settings.LEDGER_RETENTION_FLOOR_MONTHS), HARD_FLOOR_MONTHS)


def _combine(reasons: list[tuple[int, str]]) -> Retention:
    reasons.sort(key=lambda reason: -reason[0])
    return Retention(months=reasons[0][0], reasons=tuple(reasons))


def _floor_reason() -> tuple[int, str]:
    return floor_months(), "the platform's floor (LEDGER_RETENTION_FLOOR_MONTHS)"


def policy_retention(policy: RetentionPolicy | None) -> Retention:
    """The retention a policy asks for (the floor alone without one)."""
    reasons = [_floor_reason()]
    if policy is not None:
        for code in policy.frameworks:
            if code in FRAMEWORK_MINIMA:
                reasons.append(FRAMEWORK_MINIMA[code])
        if policy.minimum_months:
            reasons.append((int(policy.minimum_months), "the workspace's own minimum"))
    return _combine(reasons)


def workspace_retention(workspace) -> Retention:
    """How long ``workspace`` keeps its events, with the reasons."""
    return policy_retention(RetentionPolicy.objects.filter(workspace=workspace).first())


def organization_retentions(organization_ids) -> dict[int, Retention]:
    """Per organisation, how long its own events are kept: as long as its longest-keeping
    workspace keeps its events (the floor for an organisation without workspaces)."""
    policies = {policy.workspace_id: policy for policy in RetentionPolicy.objects.all()}
    result: dict[int, list[tuple[int, str]]] = {pk: [_floor_reason()] for pk in organization_ids}
    for workspace in Workspace.objects.filter(organization_id__in=list(organization_ids)):
        retention = policy_retention(policies.get(workspace.pk))
        if retention.months > floor_months():
            result[workspace.organization_id].append(
                (retention.months, f"its workspace {workspace.name!r}: {'; '.join(retention.deciding)}")
            )
    return {pk: _combine(reasons) for pk, reasons in result.items()}


def platform_retention() -> Retention:
    """How long events of no organisation (the platform's own) are kept."""
    return _combine([_floor_reason()])
