"""Every action the portal knows. An action not listed here is denied everywhere.

Which role may perform which action is data (``tenancy.RolePermission``, filled by a
migration); this module only names the actions and says how they are scoped.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    """Where a grant of the action must be held to count."""

    ORGANIZATION = "organization"  # an organisation-wide role (platform administrator)
    WORKSPACE = "workspace"  # a role in the object's workspace, or organisation-wide
    ANY_WORKSPACE = "any_workspace"  # a role in any workspace of the object's organisation


@dataclass(frozen=True)
class Action:
    """A named operation. ``sensitive`` denials are recorded in the ledger."""

    code: str
    description: str
    scope: Scope = Scope.WORKSPACE
    sensitive: bool = False


_ACTIONS = (
    Action("admin.access", "Open the control panel (the admin)."),
    Action("dashboard.view", "See dashboards and reports."),
    Action("organization.view", "See the organisation's settings.", Scope.ORGANIZATION),
    Action("organization.manage", "Change the organisation's settings.", Scope.ORGANIZATION, sensitive=True),
    Action("user.view", "See user accounts of the organisation.", Scope.ORGANIZATION),
    Action("user.manage", "Create, change and deactivate user accounts.", Scope.ORGANIZATION, sensitive=True),
    Action("role.view", "See the roles and what each may do."),
    Action("workspace.create", "Create workspaces.", Scope.ORGANIZATION, sensitive=True),
    Action("workspace.view", "See a workspace."),
    Action("workspace.manage", "Change a workspace's settings.", sensitive=True),
    Action("membership.view", "See who belongs to a workspace, with which role."),
    Action("membership.manage", "Add, change and remove workspace members.", sensitive=True),
    Action("grant.manage", "Grant or revoke per-object permissions.", sensitive=True),
    Action("workflow.view", "See workflows and their definitions."),
    Action("workflow.edit", "Create and change workflow definitions, submit changes.", sensitive=True),
    Action("workflow.approve", "Review and approve or reject workflow changes.", sensitive=True),
    Action("workflow.activate", "Activate workflows and apply approved changes.", sensitive=True),
    Action("workflow.stop", "Deactivate or quarantine workflows (the incident switch).", sensitive=True),
    Action("execution.view", "See workflow executions and their data."),
    Action("execution.trigger", "Trigger, retry or stop executions.", sensitive=True),
    Action(
        "human_task.decide",
        "Decide a run's approval or the review of an AI decision (approve, reject, override).",
        sensitive=True,
    ),
    Action(
        "execution.halt",
        "Halt every execution of a workspace (the incident stop), or release a halt someone else raised.",
        sensitive=True,
    ),
    Action(
        "organization.halt",
        "Halt every execution of the organisation, or release such a halt someone else raised.",
        Scope.ORGANIZATION,
        sensitive=True,
    ),
    Action("integration.manage", "Configure integrations.", sensitive=True),
    # What a workflow's steps do through an integration, as its service account (no role holds these).
    Action("integration.read", "Read through an integration in a workflow step (GET, HEAD)."),
    Action(
        "integration.write",
        "Send data through an integration in a workflow step (POST, PUT, PATCH, DELETE; every call to an AI model).",
        sensitive=True,
    ),
    Action("credential.manage", "Manage credentials.", sensitive=True),
    Action("service_account.manage", "Manage service accounts.", sensitive=True),
    Action(
        "service_account.reactivate",
        "Reactivate a service account that was disabled (dormant, overdue or by hand).",
        sensitive=True,
    ),
    Action(
        "credential.rotate_all",
        "Start the incident runbook: rotate every credential and service-account token of a workspace.",
        sensitive=True,
    ),
    Action(
        "connector.vet",
        "Vet connector types: approve, hold or block them.",
        Scope.ANY_WORKSPACE,
        sensitive=True,
    ),
    Action(
        "network.allowlist",
        "Allow integrations to reach private or loopback addresses.",
        Scope.ORGANIZATION,
        sensitive=True,
    ),
    Action("key.view", "See the status of encryption keys (provider, version, last rotation)."),
    Action(
        "key.manage", "Rotate the workspace's data keys and configure its own key (BYOK).", sensitive=True
    ),
    Action("audit.view", "Search the audit ledger."),
    Action(
        "audit.view_organization",
        "Search the organisation's own events: sign-ins, MFA, SSO, SCIM and the administration of "
        "accounts and organisation-wide roles.",
        Scope.ORGANIZATION,
    ),
    Action("evidence.order", "Order and download evidence packages.", sensitive=True),
    Action(
        "evidence.order_organization",
        "Order and download evidence packages of the organisation's own events.",
        Scope.ORGANIZATION,
        sensitive=True,
    ),
    Action("retention.view", "See how long the workspace's ledger events are kept, and its legal holds."),
    Action(
        "retention.manage",
        "Set the frameworks that decide how long the workspace's events are kept; place and release its "
        "legal holds.",
        sensitive=True,
    ),
    Action(
        "retention.view_organization",
        "See the legal holds over the whole organisation.",
        Scope.ORGANIZATION,
    ),
    Action(
        "retention.manage_organization",
        "Place and release legal holds over the whole organisation.",
        Scope.ORGANIZATION,
        sensitive=True,
    ),
    Action("policy.view", "See the access policies.", Scope.ANY_WORKSPACE),
    Action(
        "policy.manage",
        "Propose, approve or reject access policy changes.",
        Scope.ANY_WORKSPACE,
        sensitive=True,
    ),
    Action("ai_register.view", "See the register of AI providers and models.", Scope.ANY_WORKSPACE),
    Action(
        "ai_register.manage",
        "Propose, approve or reject changes of the AI register, and record bias tests.",
        Scope.ANY_WORKSPACE,
        sensitive=True,
    ),
    Action(
        "oncall.activate", "Take an on-call override for production outside business hours.", sensitive=True
    ),
)

ACTIONS: dict[str, Action] = {action.code: action for action in _ACTIONS}


def get_action(code: str) -> Action | None:
    """Return the action for ``code``, or None when the portal does not know it."""
    return ACTIONS.get(code)
