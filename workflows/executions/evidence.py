"""AI decisions in evidence packages: per workflow version, AI step and model, how many calls the
period saw and how each ended (passed, reviewed, refused by validation, canary leaked, refused
before the call, failed), with the tokens spent. The summary lists the models used per workflow
(as "AI model used: …" lines) and flags leaked canaries; each call's full decision record is its
``ai.decision`` event in the package's ledger file, with its inclusion proof.

Registered in the app's ``ready`` (``register``); the package builder writes it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count, Q, Sum

from audit.collectors import EvidenceFile, FileFormat, Findings, Scope, register_evidence_file
from workflows.executions.models import AICall, AICallVerdict

AI_DECISIONS_HEADER = (
    "workflow",
    "version",
    "step",
    "provider",
    "model",
    "model_version",
    "calls",
    *[verdict.value for verdict in AICallVerdict],
    "prompt_tokens",
    "completion_tokens",
)


def ai_decision_rows(scope: Scope, findings: Findings) -> Iterator[list[Any]]:
    calls = AICall.objects.filter(scope.in_period("created_at"), workspace_id=scope.workspace.pk)
    grouped = (
        calls.values(
            "execution__workflow__slug", "execution__version__number", "step_run__step_id", "provider", "model",
            "model_version",
        )
        .annotate(
            calls=Count("id"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            **{verdict.value: Count("id", filter=Q(verdict=verdict.value)) for verdict in AICallVerdict},
        )
        .order_by("execution__workflow__slug", "execution__version__number", "step_run__step_id", "provider", "model")
    )  # fmt: skip
    for row in grouped:
        workflow, version = row["execution__workflow__slug"], row["execution__version__number"]
        model = f"{row['provider']}/{row['model']}" + (
            f" {row['model_version']}" if row["model_version"] else ""
        )
        findings.count("AI calls", row["calls"])
        findings.count(f"AI model used: {model} by {workflow}", row["calls"])
        if row[AICallVerdict.CANARY.value]:
            findings.flag(
                "AI canary leaked (incident review)",
                f"{workflow} v{version}, step {row['step_run__step_id']}, {model}: {row[AICallVerdict.CANARY.value]}",
            )
        yield [
            workflow, version, row["step_run__step_id"], row["provider"], row["model"], row["model_version"],
            row["calls"], *[row[verdict.value] for verdict in AICallVerdict], row["prompt"] or 0,
            row["completion"] or 0,
        ]  # fmt: skip


def register() -> None:
    """Add the AI decisions to every evidence package (called from the app's ``ready``)."""
    register_evidence_file(
        EvidenceFile("ai-decisions.csv", 60, FileFormat.CSV, ai_decision_rows, AI_DECISIONS_HEADER)
    )
