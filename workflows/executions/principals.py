"""The machine principals that start a workflow's runs on their own: its scheduler and its webhook.

Each is confined to the workflow's workspace and may trigger executions there, nothing else (the
decision point's machine rule, as for a service account). Neither is a person: the ledger names
it by ``label``, and a run it starts has no ``triggered_by``.
"""

from __future__ import annotations

from dataclasses import dataclass

from governance.core.tokens import MachinePrincipal


@dataclass(frozen=True, kw_only=True)
class WorkflowTriggerPrincipal(MachinePrincipal):
    """``role`` is what starts the runs: ``scheduler`` or ``webhook``."""

    workspace_id: int
    role: str

    @classmethod
    def of(cls, workflow, role: str) -> WorkflowTriggerPrincipal:
        return cls(
            pk=workflow.pk,
            name=workflow.name,
            organization_id=workflow.workspace.organization_id,
            workspace_id=workflow.workspace_id,
            scopes=("executions:trigger",),
            allowed_actions=frozenset({"execution.trigger"}),
            token_prefix="",
            role=role,
        )

    @property
    def label(self) -> str:
        return f"{self.role} of workflow {self.name} (#{self.pk})"
