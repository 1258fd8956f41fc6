"""The AI register: what it refuses and why, the second-officer rule for its changes, the ledger,
approval and activation of workflows whose AI steps it refuses, the bias policy, its control-panel
pages, and hostile input in its forms."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from tests.conftest import member
from tests.factories import UserFactory
from tests.workflows.conftest import new_workflow, register_model
from tests.workflows.test_executions import active_workflow
from workflows.ai import bias, selectors, services
from workflows.ai.models import AIModel, AIProvider, ModelStatus, RegisterChange
from workflows.changes import services as changes
from workflows.changes.models import ChangeState, WorkflowStatus

pytestmark = pytest.mark.django_db


def today():
    """The tests' today (the workflow tests run on a Tuesday in June 2026, see conftest)."""
    return timezone.now().date()


def ai_definition(model="small-eu", provider="llm", **step):
    return {
        "trigger": {"type": "manual"},
        "steps": [
            {"id": "decide", "type": "ai_prompt", "provider": provider, "model": model,
             "prompt": "Decide.", "output_schema": {"type": "object"}, "guardrails": {"max_tokens": 100},
             "next": None, **step},
        ],
    }  # fmt: skip


def verdict(shop, provider="llm", model="small-eu", workspace=None):
    return selectors.ai_model_verdict(workspace=workspace or shop.ws, provider=provider, model=model)


PROVIDER = {
    "slug": "llm-eu", "name": "LLM EU", "kind": "saas", "integration_slug": "llm", "regions": ["EU"],
    "retention_days": 0, "trains_on_customer_data": False, "contract_reference": "MSA-7 §4",
    "dpa_on_file": True, "last_reviewed_on": "2026-05-01", "review_every_days": 365,
}  # fmt: skip
MODEL = {
    "slug": "tiny", "model_id": "tiny-1", "model_version": "2026-10", "licence": "Apache-2.0",
    "artefact_sha256": "", "status": "approved", "last_reviewed_on": "2026-05-01", "review_every_days": 180,
    "model_card": {"modelParameters": {"task": "classification"},
                   "considerations": {"fairnessAssessments": [{"groupAtRisk": "applicants over 50"}]}},
}  # fmt: skip


def propose(shop, who="compliance_officer", **kwargs):
    actor = shop.users[who] if isinstance(who, str) else who
    defaults = {"entry": "provider", "operation": "create", "values": dict(PROVIDER), "reason": "New vendor"}
    return services.register_change_propose(actor=actor, organization=shop.org, **(defaults | kwargs))


# --- What the register refuses -----------------------------------------------------------------


def test_an_approved_reviewed_model_in_region_is_allowed_with_its_facts(shop):
    found = verdict(shop)
    assert found.ok
    assert found.reason == ""
    assert (found.provider.slug, found.provider.integration_slug) == ("llm", "llm")
    assert (found.model.model_id, found.model.model_version) == ("small-eu", "1")


@pytest.mark.parametrize(
    ("setup", "provider", "model", "says"),
    [
        (None, "nobody", "small-eu", "The AI provider 'nobody' is not in the register."),
        (None, "llm", "huge", "The model 'huge' of the provider 'llm' is not in the register."),
        ({"model": "pending", "status": ModelStatus.PENDING}, "llm", "pending", "llm/pending is pending"),
        ({"model": "blocked", "status": ModelStatus.BLOCKED}, "llm", "blocked", "llm/blocked is blocked"),
        ({"model": "stale", "model_reviewed_days_ago": 400}, "llm", "stale", "review was due on"),
        ({"provider": "old", "model": "m", "reviewed_days_ago": 366}, "old", "m", "provider 'old''s review"),
        (
            {"provider": "us", "model": "m", "regions": ("US",)},
            "us",
            "m",
            "not in the workspace's data region EU",
        ),
    ],
)
def test_each_refusal_names_the_provider_or_model_and_why(shop, setup, provider, model, says):
    if setup:
        register_model(shop, **setup)
    found = verdict(shop, provider, model)
    assert not found.ok
    assert says in found.reason


def test_a_model_never_reviewed_is_refused(shop):
    AIModel.objects.filter(slug="small-eu").update(last_reviewed_on=None)
    assert "never been reviewed" in verdict(shop).reason


def test_residency_depends_on_the_workspace_region(shop):
    """The provider serves EU and US: both workspaces may use it; an EU-only one only the EU one."""
    assert verdict(shop, workspace=shop.sibling).ok  # US workspace
    register_model(shop, provider="eu-only", model="m", regions=("EU",))
    assert verdict(shop, "eu-only", "m").ok
    refused = verdict(shop, "eu-only", "m", workspace=shop.sibling)
    assert not refused.ok
    assert "residency" in refused.reason


def test_the_register_is_per_organisation(shop):
    """Another organisation's provider of the same slug is not ours."""
    assert not selectors.ai_model_verdict(workspace=shop.foreign, provider="llm", model="small-eu").ok


def test_review_due_is_the_last_review_plus_the_cycle(shop):
    model = AIModel.objects.get(slug="small-eu")
    model.review_every_days = 10
    model.save()
    assert selectors.review_due_on(model) == model.last_reviewed_on + timedelta(days=10)
    assert selectors.review_overdue(model, today())
    assert "small-eu" in verdict(shop).reason
    assert "overdue" in verdict(shop).reason


# --- Changes: proposed by one officer, decided by another -------------------------------------


def test_a_second_officer_approves_and_the_change_is_applied_with_its_ledger_events(shop):
    change = propose(shop)
    assert not AIProvider.objects.filter(slug="llm-eu").exists()  # nothing changes before approval
    proposed = AuditEvent.objects.get(action="ai_register.change_proposed")
    assert proposed.data["subject"] == "llm-eu"
    assert proposed.data["reason"] == "New vendor"
    services.register_change_approve(actor=shop.second_officer, change=change, comment="Contract checked")
    provider = AIProvider.objects.get(slug="llm-eu")
    assert (provider.regions, provider.last_reviewed_on) == (["EU"], date(2026, 5, 1))
    change.refresh_from_db()
    assert (change.status, change.decided_by, change.provider) == ("approved", shop.second_officer, provider)
    approved = AuditEvent.objects.get(action="ai_register.change_approved")
    applied = AuditEvent.objects.get(action="ai_register.change_applied")
    assert approved.data["proposed_by"] == shop.users["compliance_officer"].email
    assert applied.data["diff"]["regions"] == {"before": None, "after": ["EU"]}
    # A model of it, then blocking that model: each a proposal and a second officer's approval.
    model_change = propose(shop, entry="model", provider=provider, values=dict(MODEL), reason="Pilot")
    services.register_change_approve(actor=shop.second_officer, change=model_change, comment="ok")
    model = AIModel.objects.get(provider=provider, slug="tiny")
    assert model.model_card["considerations"]["fairnessAssessments"][0]["groupAtRisk"] == "applicants over 50"
    block = propose(shop, "compliance_officer", entry="model", operation="block", model=model, values={},
                    reason="Vendor incident")  # fmt: skip
    services.register_change_approve(actor=shop.second_officer, change=block, comment="Confirmed")
    model.refresh_from_db()
    assert model.status == ModelStatus.BLOCKED
    last = AuditEvent.objects.filter(action="ai_register.change_applied").order_by("-id").first()
    assert last.data["diff"]["status"] == {"before": "approved", "after": "blocked"}


def test_the_proposer_never_decides_their_own_change_superuser_flag_or_not(shop):
    change = propose(shop)
    proposer = shop.users["compliance_officer"]
    with pytest.raises(ValidationError) as refused:
        services.register_change_approve(actor=proposer, change=change, comment="mine")
    assert "another compliance officer" in str(refused.value)
    proposer.is_superuser = True  # never saved (the database refuses superusers); still no bypass
    with pytest.raises(ValidationError):
        services.register_change_approve(actor=proposer, change=change, comment="mine")
    with pytest.raises(ValidationError):
        services.register_change_reject(actor=proposer, change=change, comment="mine")
    change.refresh_from_db()
    assert change.status == "pending"
    assert not AIProvider.objects.filter(slug="llm-eu").exists()
    # Nor can a write around the service record it: the table itself refuses.
    with pytest.raises(IntegrityError), transaction.atomic():
        RegisterChange.objects.filter(pk=change.pk).update(decided_by=proposer, status="approved")


def test_a_rejected_change_changes_nothing_and_cannot_be_decided_again(shop):
    change = propose(shop)
    services.register_change_reject(actor=shop.second_officer, change=change, comment="No DPA yet")
    assert AuditEvent.objects.get(action="ai_register.change_rejected").data["comment"] == "No DPA yet"
    assert not AIProvider.objects.filter(slug="llm-eu").exists()
    third = UserFactory(organization=shop.org, email="officer3@acme.test", region="EU")
    member(third, "compliance_officer", shop.ws)
    with pytest.raises(ValidationError):
        services.register_change_approve(actor=third, change=change, comment="late")


@pytest.mark.parametrize(
    "who", ["workflow_builder", "workspace_owner", "auditor", "viewer", "platform_admin"]
)
def test_only_compliance_officers_propose_or_decide(shop, who):
    with pytest.raises(AccessDenied):
        propose(shop, who)
    change = propose(shop)
    with pytest.raises(AccessDenied):
        services.register_change_approve(actor=shop.users[who], change=change, comment="ok")
    assert not AuditEvent.objects.filter(action="ai_register.change_approved").exists()


def test_approval_checks_again_against_the_register_as_it_is_now(shop):
    first, second = propose(shop), propose(shop, reason="Same vendor again")
    services.register_change_approve(actor=shop.second_officer, change=first, comment="ok")
    with pytest.raises(ValidationError) as refused:
        services.register_change_approve(actor=shop.second_officer, change=second, comment="ok")
    assert "slug" in refused.value.message_dict
    assert AIProvider.objects.filter(slug="llm-eu").count() == 1


# --- Hostile and bad input: field errors, nothing written ---------------------------------------


@pytest.mark.parametrize(
    ("entry", "values", "field"),
    [
        ("provider", {"name": "LLM\x00EU"}, "name"),
        ("provider", {"name": "LLM \ud800 EU"}, "name"),
        ("provider", {"slug": "llm\u202eue"}, "slug"),
        ("provider", {"slug": "x" * 10_000}, "slug"),
        ("provider", {"regions": ["MARS"]}, "regions"),
        ("provider", {"regions": []}, "regions"),
        ("provider", {"retention_days": -1}, "retention_days"),
        ("provider", {"kind": "saas", "contract_reference": ""}, "contract_reference"),
        ("provider", {"last_reviewed_on": "2999-01-01"}, "last_reviewed_on"),
        ("provider", {"last_reviewed_on": "yesterday"}, "last_reviewed_on"),
        ("model", {"model_id": "tiny\ud800"}, "model_id"),
        ("model", {"model_card": {"considerations": {"note": "x" * 1_048_576}}}, "model_card"),
        ("model", {"model_card": ["not", "an", "object"]}, "model_card"),
        ("model", {"model_card": {"considerations": {"fairnessAssessments": "all fine"}}}, "model_card"),
        ("model", {"model_card": {"modelParameters": {"task": "a\x00b"}}}, "model_card"),
        ("model", {"model_card": {"evilKey": 1}}, "model_card"),
        ("model", {"artefact_sha256": "xyz"}, "artefact_sha256"),
        ("model", {"artefact_sha256": "g" * 64}, "artefact_sha256"),
        ("model", {"status": "maybe"}, "status"),
    ],
)
def test_bad_values_are_field_errors_and_nothing_is_proposed(shop, entry, values, field):
    provider = AIProvider.objects.get(slug="llm") if entry == "model" else None
    base = dict(MODEL) if entry == "model" else dict(PROVIDER)
    with pytest.raises(ValidationError) as refused:
        propose(shop, entry=entry, provider=provider, values=base | values)
    assert field in refused.value.message_dict, refused.value.message_dict
    assert not RegisterChange.objects.exists()


def test_a_self_hosted_model_needs_the_sha256_of_its_artefact(shop):
    register_model(shop, provider="onprem", model="m", kind="on_premise", artefact_sha256="a" * 64)
    provider = AIProvider.objects.get(slug="onprem")
    with pytest.raises(ValidationError) as refused:
        propose(shop, entry="model", provider=provider, values=dict(MODEL))
    assert "artefact_sha256" in refused.value.message_dict
    change = propose(shop, entry="model", provider=provider, values=MODEL | {"artefact_sha256": "AB" * 32})
    assert change.values["artefact_sha256"] == "ab" * 32


def test_a_reason_is_required_and_storable(shop):
    for reason in ("", "why\x00"):
        with pytest.raises(ValidationError) as refused:
            propose(shop, reason=reason)
        assert "reason" in refused.value.message_dict


# --- Approval and activation of workflows whose AI steps the register refuses -------------------


def _submitted(shop, definition, slug="ai-flow"):
    change = new_workflow(shop, definition=definition, slug=slug)
    return changes.change_request_submit(actor=shop.users["workflow_builder"], change=change)


def _approve(shop, change):
    for reviewer, tier in zip([shop.users["compliance_officer"], shop.second_officer],
                              [t["code"] for t in change.required_tiers], strict=False):  # fmt: skip
        change = changes.change_request_decide(
            actor=reviewer, change=change, tier=tier, approve=True, comment="ok"
        )
    return change


@pytest.mark.parametrize(
    ("model", "setup", "says"),
    [
        ("unknown", None, "not in the register"),
        ("pending", {"model": "pending", "status": ModelStatus.PENDING}, "pending"),
        ("blocked", {"model": "blocked", "status": ModelStatus.BLOCKED}, "blocked"),
        ("stale", {"model": "stale", "model_reviewed_days_ago": 800}, "overdue"),
    ],
)
def test_a_change_whose_ai_step_the_register_refuses_cannot_be_approved(shop, client, model, setup, says):
    if setup:
        register_model(shop, **setup)
    change = _submitted(shop, ai_definition(model))
    tier = change.required_tiers[0]["code"]
    with pytest.raises(ValidationError) as refused:
        changes.change_request_decide(actor=shop.users["compliance_officer"], change=change, tier=tier,
                                      approve=True, comment="ok")  # fmt: skip
    assert "The AI register refuses it" in str(refused.value)
    assert says in str(refused.value)
    assert "'decide'" in str(refused.value)  # the step is named
    change.refresh_from_db()
    assert change.state == ChangeState.SUBMITTED
    assert not change.approvals.exists()
    # The review page says why, beside the approvals.
    client.force_login(shop.users["compliance_officer"])
    page = client.get(reverse("admin:workflows_changerequest_change", args=[change.pk])).content.decode()
    assert "cannot be approved or applied now" in page
    assert "The AI register refuses it" in page
    assert says in page
    # Rejecting stays possible.
    changes.change_request_decide(actor=shop.users["compliance_officer"], change=change, tier=tier,
                                  approve=False, comment="Pick an approved model")  # fmt: skip


def test_a_model_blocked_after_activation_cannot_be_reactivated(shop):
    workflow = active_workflow(shop, ai_definition(), slug="ai-flow")
    officer = shop.users["compliance_officer"]
    changes.workflow_set_status(
        actor=officer, workflow=workflow, status=WorkflowStatus.INACTIVE, reason="Pause"
    )
    AIModel.objects.filter(slug="small-eu").update(status=ModelStatus.BLOCKED)
    with pytest.raises(ValidationError) as refused:
        changes.workflow_set_status(actor=shop.second_officer, workflow=workflow, status=WorkflowStatus.ACTIVE,
                                    reason="Back")  # fmt: skip
    assert "blocked in the register" in str(refused.value)
    workflow.refresh_from_db()
    assert workflow.status == WorkflowStatus.INACTIVE


def test_the_portal_does_not_apply_an_approved_change_the_register_now_refuses(shop):
    change = _submitted(shop, ai_definition())
    change.state = ChangeState.APPROVED  # approved while the model was approved (as a waiting change is)
    change.save(update_fields=["state"])
    AIModel.objects.filter(slug="small-eu").update(status=ModelStatus.BLOCKED)
    assert changes.change_request_apply_as_portal(change_id=change.pk) is None
    change.refresh_from_db()
    assert change.state == ChangeState.APPROVED
    assert change.deferral_reason.startswith("The AI register refuses it:")
    event = AuditEvent.objects.filter(action="workflow.change.apply_deferred").order_by("-id").first()
    assert "blocked" in event.data["reason"]
    with pytest.raises(ValidationError):
        changes.change_request_apply(actor=shop.second_officer, change=change)


# --- The bias policy ---------------------------------------------------------------------------


def record_bias_test(shop, workflow, **values):
    defaults = {"provider": "llm", "model": "small-eu", "dataset_reference": "hiring-2026-q3",
                "protected_attributes": ["sex", "age band"], "metric": "selection_rate_ratio", "value": 0.86,
                "threshold": 0.8, "tested_on": today() - timedelta(days=3)}  # fmt: skip
    return bias.bias_test_record(
        actor=shop.users["compliance_officer"], workflow=workflow, **(defaults | values)
    )


def test_a_step_deciding_about_people_needs_a_current_passing_bias_test(shop):
    definition = ai_definition(decides_about_people=True)
    change = _submitted(shop, definition)
    tier = change.required_tiers[0]["code"]
    with pytest.raises(ValidationError) as refused:
        changes.change_request_decide(actor=shop.users["compliance_officer"], change=change, tier=tier,
                                      approve=True, comment="ok")  # fmt: skip
    assert "no bias test of llm/small-eu" in str(refused.value)
    failed = record_bias_test(shop, change.workflow, value=0.6)
    assert not failed.passed
    assert "failed" in bias.bias_refusal(workflow=change.workflow, definition=definition)
    record_bias_test(shop, change.workflow, value=0.9)
    assert AuditEvent.objects.filter(action="ai.bias_test_recorded").count() == 2
    change = _approve(shop, change)
    assert change.state == ChangeState.APPLIED


def test_a_bias_test_that_ran_out_is_no_longer_current(shop):
    workflow = new_workflow(shop, definition=ai_definition(decides_about_people=True), slug="hiring").workflow
    record_bias_test(shop, workflow, tested_on=today() - timedelta(days=400))
    reason = bias.bias_refusal(workflow=workflow, definition=ai_definition(decides_about_people=True))
    assert "ran out" in reason


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"dataset_reference": "x\x00"}, "dataset_reference"),
        ({"protected_attributes": []}, "protected_attributes"),
        ({"value": 1.5}, "value"),
        ({"threshold": 0}, "threshold"),
        ({"metric": "vibes"}, "metric"),
        ({"tested_on": today() + timedelta(days=2)}, "tested_on"),
    ],
)
def test_bad_bias_test_values_are_field_errors(shop, values, field):
    workflow = new_workflow(shop, definition=ai_definition(), slug="hiring").workflow
    with pytest.raises(ValidationError) as refused:
        record_bias_test(shop, workflow, **values)
    assert field in refused.value.message_dict


def test_only_officers_record_bias_tests(shop):
    workflow = new_workflow(shop, definition=ai_definition(), slug="hiring").workflow
    with pytest.raises(AccessDenied):
        bias.bias_test_record(actor=shop.users["workflow_builder"], workflow=workflow, provider="llm",
                              model="small-eu", dataset_reference="d", protected_attributes=["sex"],
                              metric="selection_rate_ratio", value=0.9, threshold=0.8, tested_on=today())  # fmt: skip


# --- The control panel -------------------------------------------------------------------------


def test_officers_propose_and_decide_in_the_control_panel(shop, client):
    officer, second = shop.users["compliance_officer"], shop.second_officer
    client.force_login(officer)
    add = reverse("admin:workflows_registerchange_add") + "?entry=provider&operation=create"
    assert "Propose" in client.get(reverse("admin:workflows_aiprovider_changelist")).content.decode()
    form = {**PROVIDER, "regions": ["EU"], "trains_on_customer_data": "", "dpa_on_file": "on",
            "reason": "New vendor"}  # fmt: skip
    done = client.post(add, form)
    assert done.status_code == 302, done.content.decode()[:3000]
    change = RegisterChange.objects.get()
    assert (change.proposed_by, change.values["slug"]) == (officer, "llm-eu")
    assert client.get(reverse("admin:workflows_registerchange_decide", args=[change.pk])).status_code == 403
    other = Client()
    other.force_login(second)
    page = other.get(reverse("admin:workflows_registerchange_change", args=[change.pk])).content.decode()
    assert "Approve or reject" in page
    assert "llm-eu" in page
    decided = other.post(reverse("admin:workflows_registerchange_decide", args=[change.pk]),
                         {"decision": "approve", "comment": "DPA checked"})  # fmt: skip
    assert decided.status_code == 302
    assert AIProvider.objects.filter(slug="llm-eu", organization=shop.org).exists()


@pytest.mark.parametrize(
    ("post", "field"),
    [
        ({"name": "LLM\x00EU"}, "name"),
        ({"slug": "bad slug!"}, "slug"),
        ({"regions": ["MARS"]}, "regions"),
        ({"contract_reference": ""}, "contract_reference"),
        ({"name": "x" * 1_000_000}, "name"),
    ],
)
def test_hostile_input_in_the_provider_form_is_a_field_error(shop, client, post, field):
    client.force_login(shop.users["compliance_officer"])
    add = reverse("admin:workflows_registerchange_add") + "?entry=provider&operation=create"
    form = {**PROVIDER, "regions": ["EU"], "dpa_on_file": "on", "reason": "New vendor"} | post
    page = client.post(add, form)
    assert page.status_code == 200
    assert page.context["adminform"].form.errors.get(field), page.context["adminform"].form.errors
    assert not RegisterChange.objects.exists()


@pytest.mark.parametrize(
    ("post", "field"),
    [
        ({"model_card": json.dumps({"considerations": {"note": "x" * 1_048_576}})}, "model_card"),
        ({"model_card": '{"considerations": {"note": "\\u0000"}}'}, "model_card"),
        ({"model_card": '{"considerations": {"note": "\\ud800"}}'}, "model_card"),
        ({"model_card": "[1, 2]"}, "model_card"),
        ({"artefact_sha256": "not-a-hash"}, "artefact_sha256"),
        ({"model_id": "tiny\u200b"}, "model_id"),
    ],
)
def test_hostile_input_in_the_model_form_is_a_field_error(shop, client, post, field):
    client.force_login(shop.users["compliance_officer"])
    provider = AIProvider.objects.get(slug="llm")
    add = (
        reverse("admin:workflows_registerchange_add")
        + f"?entry=model&operation=create&provider={provider.pk}"
    )
    form = {
        **MODEL,
        "provider": provider.pk,
        "model_card": json.dumps(MODEL["model_card"]),
        "reason": "Pilot",
    }
    page = client.post(add, form | post)
    assert page.status_code == 200
    assert page.context["adminform"].form.errors.get(field), page.context["adminform"].form.errors
    assert not RegisterChange.objects.exists()
    ok = client.post(add, form)
    assert ok.status_code == 302, ok.context["adminform"].form.errors if ok.status_code == 200 else ""


def test_the_model_page_shows_the_workflows_and_versions_that_use_it(shop, client):
    active_workflow(shop, ai_definition(), slug="ai-flow")
    client.force_login(shop.users["auditor"])
    model = AIModel.objects.get(slug="small-eu")
    page = client.get(reverse("admin:workflows_aimodel_change", args=[model.pk])).content.decode()
    assert "Workflow ai-flow in Ops EU: v1 (active)" in page
    assert "Propose a change" not in page  # the auditor reads, never proposes
    assert [row["versions"] for row in selectors.model_used_by(model)] == [[1]]


def test_the_posture_index_shows_models_by_status_and_reviews_due(shop, client):
    register_model(shop, model="blocked", status=ModelStatus.BLOCKED)
    register_model(shop, model="stale", model_reviewed_days_ago=400)
    client.force_login(shop.users["compliance_officer"])
    page = client.get(reverse("admin:index")).content.decode()
    assert "AI register" in page
    assert "2 approved" in page
    assert "1 blocked" in page
    assert "llm/stale" in page
    assert "overdue: refused" in page


def test_the_bias_test_form_records_through_the_service_with_field_errors(shop, client):
    workflow = new_workflow(shop, definition=ai_definition(), slug="hiring").workflow
    client.force_login(shop.users["compliance_officer"])
    add = reverse("admin:workflows_biastest_add")
    form = {"workflow": workflow.pk, "provider": "llm", "model": "small-eu", "dataset_reference": "hr-2026",
            "protected_attributes": "sex, age band", "metric": "selection_rate_ratio", "value": "0.9",
            "threshold": "0.8", "tested_on": (today() - timedelta(days=1)).isoformat(), "notes": ""}  # fmt: skip
    bad = client.post(add, form | {"value": "7"})
    assert bad.status_code == 200
    assert bad.context["adminform"].form.errors.get("value")
    done = client.post(add, form)
    assert done.status_code == 302, done.context["adminform"].form.errors if done.status_code == 200 else ""
    assert workflow.bias_tests.get().protected_attributes == ["sex", "age band"]
    assert AuditEvent.objects.filter(action="ai.bias_test_recorded").exists()


def test_the_step_editor_shows_the_registers_facts_of_each_ai_steps_model(shop, client):
    register_model(shop, provider="us-only", model="m", regions=("US",))
    definition = ai_definition()
    definition["steps"][0]["next"] = "second"
    definition["steps"].append({**ai_definition("m", "us-only")["steps"][0], "id": "second"})
    workflow = new_workflow(shop, definition=definition, slug="ai-flow").workflow
    client.force_login(shop.users["workflow_builder"])
    page = client.get(reverse("workflow-edit", args=[workflow.pk])).content.decode()
    assert "AI register: llm/small-eu" in page
    assert "usable in this workspace" in page
    assert "Trains on customer data" in page
    assert "MSA-2026-01" in page
    assert "AI register: us-only/m" in page
    assert "residency" in page


def test_blocking_a_provider_blocks_each_of_its_models_in_one_recorded_change(shop, client):
    register_model(shop, model="second")
    provider = AIProvider.objects.get(slug="llm")
    client.force_login(shop.users["compliance_officer"])
    add = (
        reverse("admin:workflows_registerchange_add")
        + f"?entry=provider&operation=block&provider={provider.pk}"
    )
    assert client.post(add, {"reason": "Vendor breach"}).status_code == 302
    change = RegisterChange.objects.get()
    assert (change.entry, change.operation, change.provider) == ("provider", "block", provider)
    assert verdict(shop).ok  # nothing changes before the second officer approves
    services.register_change_approve(actor=shop.second_officer, change=change, comment="Confirmed")
    assert set(provider.models.values_list("status", flat=True)) == {ModelStatus.BLOCKED}
    applied = AuditEvent.objects.filter(action="ai_register.change_applied").order_by("id")
    assert [event.data["subject"] for event in applied] == ["llm/small-eu", "llm/second"]
    assert {event.data["diff"]["status"]["after"] for event in applied} == {"blocked"}
    assert "blocked in the register" in verdict(shop).reason


def test_every_register_write_is_captured_and_named_by_its_own_event(shop):
    from audit.ledger_verification import ledger_verify
    from audit.models import RowChange
    from audit.sealing import ledger_seal_all

    mark = ledger_seal_all().tree_size
    change = propose(shop)
    services.register_change_approve(actor=shop.second_officer, change=change, comment="ok")
    block = propose(shop, entry="provider", operation="block", provider=AIProvider.objects.get(slug="llm"),
                    values={}, reason="Incident")  # fmt: skip
    services.register_change_approve(actor=shop.second_officer, change=block, comment="ok")
    ledger_seal_all()
    tables = ("workflows_aiprovider", "workflows_aimodel", "workflows_registerchange")
    captures = RowChange.objects.filter(table_name__in=tables, event__sequence__gt=mark)
    assert set(captures.values_list("table_name", flat=True)) == set(tables)
    assert not captures.filter(event__action="db.row_changed").exists()
    assert not RowChange.objects.filter(event__isnull=True).exists()
    assert ledger_verify().ok


def test_a_proposed_change_starts_from_the_entrys_current_state(shop, client):
    model = AIModel.objects.get(slug="small-eu")
    client.force_login(shop.users["compliance_officer"])
    base = reverse("admin:workflows_registerchange_add")
    page = client.get(f"{base}?entry=model&operation=update&model={model.pk}")
    assert page.status_code == 200
    form = page.context["adminform"].form
    assert form.initial["model_id"] == "small-eu"
    assert form.fields["slug"].disabled
    posted = {**{k: v for k, v in form.initial.items() if v is not None}, "model_card": "{}",
              "licence": "MIT", "reason": "Relicensed"}  # fmt: skip
    done = client.post(f"{base}?entry=model&operation=update&model={model.pk}", posted)
    assert done.status_code == 302, done.context["adminform"].form.errors if done.status_code == 200 else ""
    change = RegisterChange.objects.get()
    assert (change.operation, change.model) == ("update", model)
    assert change.values["licence"] == "MIT"
    page = client.get(reverse("admin:workflows_registerchange_change", args=[change.pk])).content.decode()
    assert "Apache-2.0" in page  # now
    assert "Waiting for another compliance officer" in page


def test_an_older_update_cannot_undo_a_block_applied_after_it_was_proposed(shop):
    """An update carries the whole state of the entry as it was proposed: once a block is applied,
    pending updates of that model are closed as superseded, never applied over the block."""
    model = AIModel.objects.get(slug="small-eu")
    update = propose(shop, entry="model", operation="update", model=model,
                     values=services.model_state(model) | {"licence": "MIT"}, reason="Licence fix")  # fmt: skip
    block = propose(shop, entry="model", operation="block", model=model, values={}, reason="Incident 42")
    services.register_change_approve(actor=shop.second_officer, change=block, comment="Blocked")
    update.refresh_from_db()
    assert update.status == "rejected"
    assert f"Superseded by change #{block.pk}" in update.decision_comment
    assert AuditEvent.objects.filter(action="ai_register.change_rejected", target_id=str(update.pk)).exists()
    with pytest.raises(ValidationError):
        services.register_change_approve(actor=shop.second_officer, change=update, comment="Licence ok")
    model.refresh_from_db()
    assert model.status == "blocked"
