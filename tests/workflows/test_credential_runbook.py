"""The incident runbook: rotate every credential of a workspace, as a job with progress and a report."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from audit.models import AuditEvent
from governance.access.decision import AccessDenied
from governance.crypto.models import DataKey
from workflows.credentials import services
from workflows.credentials.models import Credential, CredentialRunbook
from workflows.integrations.models import Integration
from workflows.service_accounts.models import ServiceAccountToken
from workflows.service_accounts.services import service_account_authenticate, service_account_token_issue

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


@pytest.fixture
def incident(world):
    """Two credentials (one in its grace period) and a service account with a live token."""
    from tests.workflows.service_account_world import service_accounts_of

    owner = world.users["workspace_owner"]
    integration = Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm")
    first = services.credential_create(actor=owner, integration=integration, name="a", value="first-value-11")
    services.credential_promote(actor=owner, version=services.credential_stage(actor=owner, credential=first,
                                                                               value="first-value-22"))  # fmt: skip
    services.credential_create(actor=owner, integration=integration, name="b", value="second-value-11")
    account = service_accounts_of(world)["own"]
    issued = service_account_token_issue(actor=owner, account=account)
    return world, issued


def test_runbook_replaces_everything_and_reports(incident, django_capture_on_commit_callbacks):
    """GIVEN credentials and a live service-account token WHEN an officer starts the runbook THEN
    every credential is marked for replacement with grace periods ended, every token is revoked,
    the credentials data key is rotated, and the report lists each item with its next step."""
    world, issued = incident
    officer = world.users["compliance_officer"]
    old_key = DataKey.objects.get(workspace=world.ws, purpose="credentials", status="active")
    with django_capture_on_commit_callbacks(execute=True):
        runbook = services.credential_runbook_start(actor=officer, workspace=world.ws, reason="laptop stolen")
    runbook.refresh_from_db()
    assert (runbook.status, runbook.done, runbook.total, runbook.percent) == ("completed", 4, 4, 100)
    kinds = [item["kind"] for item in runbook.report]
    assert kinds == ["credential", "credential", "service_account", "data_key"]
    assert all(c.rotation_required for c in Credential.objects.using("secrets").all())
    assert not ServiceAccountToken.objects.filter(revoked_at__isnull=True).exists()
    with pytest.raises(Exception):  # noqa: B017,PT011  (the revoked token is refused)
        service_account_authenticate(token=issued.plaintext)
    with pytest.raises(ValidationError):
        services.credential_value_resolve(credential_id=Credential.objects.using("secrets").get(name="a").pk,
                                          version_number=1)  # fmt: skip
    # The data key rotation is its own background job (started by the runbook's last step).
    from governance.crypto.models import RotationJob
    from governance.crypto.tasks import rotation_job_run

    job = RotationJob.objects.get(from_key=old_key)
    rotation_job_run(job.pk)
    old_key.refresh_from_db()
    assert old_key.status == "retired"
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"credential.runbook_started", "credential.rotation_required", "service_account.token_revoked",
            "data_key.rotation_started", "credential.runbook_completed"} <= actions  # fmt: skip


def test_runbook_resumes_after_a_crash(incident, settings):
    world, _ = incident
    from unittest import mock

    with mock.patch("workflows.credentials.tasks.credential_runbook_advance.delay"):
        runbook = services.credential_runbook_start(actor=world.users["workspace_owner"], workspace=world.ws,
                                                    reason="token leaked in a log")  # fmt: skip
    # A worker did the first item and died before the second.
    items = services._runbook_items(world.ws)
    from audit.services import audited_transaction

    with audited_transaction():
        entry = services._runbook_credential(runbook, items[0][1])
        CredentialRunbook.objects.filter(pk=runbook.pk).update(done=1, report=[entry])
    runbook = services.credential_runbook_advance(runbook_id=runbook.pk)
    assert runbook.status == "completed"
    assert len(runbook.report) == 4
    assert AuditEvent.objects.filter(action="credential.rotation_required").count() == 2  # none twice


@pytest.mark.parametrize(
    "role", ["workflow_builder", "workflow_operator", "viewer", "auditor", "platform_admin"]
)
def test_runbook_is_for_owners_and_officers_only(incident, role):
    world, _ = incident
    with pytest.raises(AccessDenied):
        services.credential_runbook_start(actor=world.users[role], workspace=world.ws, reason="x")


def test_runbook_needs_a_reason_and_runs_once_at_a_time(incident):
    world, _ = incident
    officer = world.users["compliance_officer"]
    with pytest.raises(ValidationError, match="Say why"):
        services.credential_runbook_start(actor=officer, workspace=world.ws, reason="  ")
    from unittest import mock

    with mock.patch("workflows.credentials.tasks.credential_runbook_advance.delay"):
        services.credential_runbook_start(actor=officer, workspace=world.ws, reason="one")
        with pytest.raises(ValidationError, match="already running"):
            services.credential_runbook_start(actor=officer, workspace=world.ws, reason="two")


def test_runbook_page_starts_it_and_shows_progress(incident, client, django_capture_on_commit_callbacks):
    world, _ = incident
    client.force_login(world.users["compliance_officer"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:workflows_credentialrunbook_add"),
                               {"workspace": world.ws.pk, "reason": "credential found in a paste site"})  # fmt: skip
    assert response.status_code == 302
    runbook = CredentialRunbook.objects.get()
    page = client.get(reverse("admin:workflows_credentialrunbook_change", args=[runbook.pk])).content.decode()
    assert "100%" in page
    assert "stage and promote a new value" in page
    assert "token(s) revoked" in page
