"""The AI register in the test world, for the matrices: a provider, a model and a pending change
of each organisation, and a bias test in each workspace (own, sibling, foreign)."""

from __future__ import annotations

from datetime import date

from workflows.ai.models import AIModel, AIProvider, BiasTest, RegisterChange


def ai_register_of(world) -> dict[str, dict]:
    made = getattr(world, "ai_register", None)
    if made is not None:
        return made
    providers, models, changes, tests = {}, {}, {}, {}
    for scope, organization, proposer in (
        ("own", world.org, world.users["workspace_owner"]),  # not an officer: officers may decide it
        ("foreign", world.foreign_org, world.foreign_user),
    ):
        providers[scope] = AIProvider.objects.create(
            organization=organization, slug=f"{scope}-llm", name=f"{scope} LLM", kind="saas",
            integration_slug="llm", regions=["EU"], retention_days=30, trains_on_customer_data=False,
            contract_reference="MSA-1", dpa_on_file=True, last_reviewed_on=date(2026, 1, 5),
        )  # fmt: skip
        models[scope] = AIModel.objects.create(
            provider=providers[scope], slug="small", model_id="small", model_version="1", licence="MIT",
            status="approved", last_reviewed_on=date(2026, 1, 5),
        )  # fmt: skip
        changes[scope] = RegisterChange.objects.create(
            organization=organization, entry="model", operation="block", provider=providers[scope],
            model=models[scope], reason="test", proposed_by=proposer,
        )  # fmt: skip
    for scope, workspace, author in (
        ("own", world.ws, world.users["compliance_officer"]),
        ("sibling", world.sibling, world.sibling_membership.user),
        ("foreign", world.foreign, world.foreign_user),
    ):
        workflow = world.workflows.get(scope)
        if workflow is None:
            continue
        tests[scope] = BiasTest.objects.create(
            workspace=workspace, workflow=workflow, provider=f"{scope}-llm", model="small",
            dataset_reference="hr-2026", protected_attributes=["sex"], metric="selection_rate_ratio",
            value=0.9, threshold=0.8, passed=True, reviewer=author, tested_on=date(2026, 1, 5),
            valid_until=date(2027, 1, 5),
        )  # fmt: skip
    made = {
        "workflows.aiprovider": providers,
        "workflows.aimodel": models,
        "workflows.registerchange": changes,
        "workflows.biastest": tests,
    }
    world.ai_register = made
    return made
