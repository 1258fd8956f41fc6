"""Which approvals a change needs, derived from its diff, the workflow and the integrations.

Every tier is needed (they are AND-ed), each from a different person, never the author:

| tier | when | who |
|---|---|---|
| compliance | always; on production with the security-review checklist | a compliance officer |
| privacy | the workflow handles personal data | another compliance officer |
| security | an AI step added or changed, an integration added, an integration reference changed | another compliance officer |
| manager | a financial or HR integration added | the author's manager |
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

CHECKLIST = (
    ("data_handling", "Data handling: what data the workflow reads and writes, where it goes, retention."),
    ("access_scope", "Access scope: integrations and permissions are the least the workflow needs."),
    (
        "error_behaviour",
        "Error behaviour: failures stop safely, retries are bounded, nobody is left unaware.",
    ),
)


@dataclass(frozen=True)
class Tier:
    code: str
    reason: str
    approver: str  # "compliance_officer" or "manager"
    checklist: bool = False

    def as_dict(self) -> dict:
        return asdict(self)


def required_tiers(*, workflow, diff: dict, integrations: dict) -> list[Tier]:
    """The tiers for a change of ``workflow`` described by ``diff`` (see definition.diff_definitions)."""
    production = workflow.environment == "production"
    tiers = [
        Tier(
            "compliance",
            "Every change needs a compliance officer's approval"
            + (", with the security-review checklist (production workflow)." if production else "."),
            "compliance_officer",
            checklist=production,
        )
    ]
    if workflow.handles_pii:
        tiers.append(Tier("privacy", "The workflow handles personal data.", "compliance_officer"))
    security, manager = [], []
    for change in diff["steps"]:
        before, after = change.get("before") or {}, change.get("after") or {}
        if change["kind"] in ("added", "changed") and change["type"] == "ai_prompt":
            security.append(f"AI step {change['step']} {change['kind']}")
        old_ref = before.get("integration") or before.get("provider")
        new_ref = after.get("integration") or after.get("provider")
        if new_ref and new_ref != old_ref:
            if change["kind"] == "added" or not old_ref:
                security.append(f"integration {new_ref} added (step {change['step']})")
            else:
                security.append(f"step {change['step']} now uses {new_ref} instead of {old_ref}")
            integration = integrations.get(new_ref)
            if integration is not None and integration.sensitivity in ("financial", "hr"):
                manager.append(f"{integration.get_sensitivity_display().lower()} integration {new_ref}")
    if security:
        tiers.append(
            Tier(
                "security",
                "Security review: " + "; ".join(dict.fromkeys(security)) + ".",
                "compliance_officer",
            )
        )
    if manager:
        tiers.append(
            Tier("manager", "Manager approval: " + "; ".join(dict.fromkeys(manager)) + ".", "manager")
        )
    return tiers
