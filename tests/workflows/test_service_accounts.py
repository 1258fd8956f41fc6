"""Service accounts: one per integration, least privilege, rotated, dormant ones disabled, all audited."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from audit.models import AuditEvent, RowChange
from governance.access.decision import AccessDenied, decide
from workflows.integrations.models import Integration
from workflows.service_accounts import services, tasks
from workflows.service_accounts.models import DisabledReason, ServiceAccount, ServiceAccountToken
from workflows.service_accounts.principals import SERVICE_ACCOUNT_TOKENS
from workflows.service_accounts.services import ServiceAccountAuthenticationError

TOKEN_PATTERN = SERVICE_ACCOUNT_TOKENS.pattern


@pytest.fixture
def owner(world):
    return world.users["workspace_owner"]


@pytest.fixture
def crm(world):
    return Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm")


@pytest.fixture
def account(owner, crm):
    return services.service_account_create(
        actor=owner, integration=crm, name="CRM sync", scopes=["workflows:read"]
    )


def issue(owner, account, **kwargs):
    return services.service_account_token_issue(actor=owner, account=account, **kwargs)


def refusal_reason(token: str, **kwargs) -> str:
    with pytest.raises(ServiceAccountAuthenticationError) as refused:
        services.service_account_authenticate(token=token, **kwargs)
    return refused.value.reason


def events(action: str):
    return AuditEvent.objects.filter(action=action).order_by("id")


def backdate(account, days: int, **fields) -> None:
    """Move an account's creation (and dormancy clock) ``days`` into the past."""
    then = timezone.now() - timedelta(days=days)
    ServiceAccount.objects.filter(pk=account.pk).update(created_at=then, active_since=then, **fields)


# --- One dedicated account per integration ---------------------------------------------------------


def test_each_integration_has_exactly_one_account(owner, crm, account):
    """GIVEN an integration with its account WHEN a second one is asked for THEN it is refused."""
    with pytest.raises(ValidationError) as refused:
        services.service_account_create(
            actor=owner, integration=crm, name="shared", scopes=["workflows:read"]
        )
    assert "exactly one dedicated account" in str(refused.value.message_dict["integration"])
    assert ServiceAccount.objects.filter(integration=crm).count() == 1
    created = events("service_account.created").get()
    assert created.data["integration"] == "crm"
    assert created.data["scopes"] == ["workflows:read"]
    assert account.rotation_due_at - account.created_at == timedelta(days=90)


def test_scopes_come_from_the_catalogue_and_rotation_never_exceeds_the_ceiling(owner, crm, settings):
    with pytest.raises(ValidationError) as unknown:
        services.service_account_create(actor=owner, integration=crm, name="x", scopes=["admin:all"])
    assert "Unknown scope" in str(unknown.value.message_dict["scopes"])
    with pytest.raises(ValidationError):
        services.service_account_create(actor=owner, integration=crm, name="x", scopes=[])
    with pytest.raises(ValidationError) as too_long:
        services.service_account_create(
            actor=owner, integration=crm, name="x", scopes=["workflows:read"], rotation_period_days=91
        )
    assert "rotation_period_days" in too_long.value.message_dict
    settings.SERVICE_ACCOUNT_ROTATION_DAYS = 30  # configured lower: the default follows, 31 is refused
    with pytest.raises(ValidationError):
        services.service_account_create(
            actor=owner, integration=crm, name="x", scopes=["workflows:read"], rotation_period_days=31
        )
    account = services.service_account_create(
        actor=owner, integration=crm, name="x", scopes=["workflows:read"]
    )
    assert account.rotation_period_days == 30
    assert not ServiceAccount.objects.exclude(pk=account.pk).exists()


@pytest.mark.parametrize("role", ["compliance_officer", "platform_admin", "workflow_builder", "auditor"])
def test_only_those_who_manage_service_accounts_create_them(world, crm, role):
    with pytest.raises(AccessDenied):
        services.service_account_create(
            actor=world.users[role], integration=crm, name="x", scopes=["workflows:read"]
        )
    assert not ServiceAccount.objects.exists()


# --- Tokens ----------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_hashed_and_found_by_its_prefix(owner, account):
    issued = issue(owner, account)
    match = TOKEN_PATTERN.match(issued.plaintext)
    assert match is not None
    assert match["prefix"] == issued.token.prefix
    secret = match["secret"]
    row = ServiceAccountToken.objects.get(pk=issued.token.pk)
    assert row.digest == hashlib.sha256(secret.encode()).hexdigest()
    assert all(secret not in str(getattr(row, f.attname)) for f in row._meta.concrete_fields)
    assert secret not in repr(issued)
    principal = services.service_account_authenticate(token=issued.plaintext)
    assert principal.pk == account.pk
    assert principal.token_prefix == row.prefix
    assert row.expires_at - row.created_at == timedelta(days=account.rotation_period_days)
    issued_event = events("service_account.token_issued").get()
    assert issued_event.data["prefix"] == row.prefix
    assert all(secret.encode() not in bytes(event.canonical) for event in AuditEvent.objects.all())


def test_an_expired_token_is_refused(owner, account):
    issued = issue(owner, account)
    after = issued.token.expires_at + timedelta(seconds=1)
    assert refusal_reason(issued.plaintext, now=after) == "expired"


def test_rotation_keeps_the_previous_token_for_the_grace_window_only(owner, account):
    """GIVEN a token rotated at T WHEN the old one is used THEN it works until T + grace, not after."""
    start = timezone.now()
    old = issue(owner, account, now=start)
    rotated_at = start + timedelta(days=1)
    new = issue(owner, account, now=rotated_at)
    grace = settings.SERVICE_ACCOUNT_ROTATION_GRACE
    assert services.service_account_authenticate(
        token=old.plaintext, now=rotated_at + grace - timedelta(minutes=1)
    )
    assert refusal_reason(old.plaintext, now=rotated_at + grace + timedelta(minutes=1)) == "superseded"
    assert services.service_account_authenticate(
        token=new.plaintext, now=rotated_at + grace + timedelta(minutes=1)
    )
    account.refresh_from_db()
    assert account.last_rotated_at == rotated_at
    assert account.rotation_due_at == rotated_at + timedelta(days=account.rotation_period_days)
    previous = events("service_account.token_issued").last().data["previous_tokens"]
    assert [p["prefix"] for p in previous] == [old.token.prefix]


def test_revoked_tokens_and_disabled_accounts_are_refused(owner, account):
    revoked = issue(owner, account)
    services.service_account_token_revoke(actor=owner, token=revoked.token, reason="leaked")
    assert refusal_reason(revoked.plaintext) == "revoked"
    assert events("service_account.token_revoked").get().data == {
        "prefix": revoked.token.prefix,
        "reason": "leaked",
    }
    live = issue(owner, account)
    services.service_account_disable(actor=owner, account=account, reason="incident", note="suspicious calls")
    assert refusal_reason(live.plaintext) == "account disabled"
    assert events("service_account.disabled").get().data["reason"] == "incident"


def test_authentication_successes_and_failures_are_ledger_events_without_the_secret(owner, account):
    issued = issue(owner, account)
    prefix, secret = issued.token.prefix, TOKEN_PATTERN.match(issued.plaintext)["secret"]
    services.service_account_authenticate(token=issued.plaintext)
    account.refresh_from_db()
    assert account.last_used_at is not None
    success = events("service_account.authenticated").get()
    assert (success.actor_type, success.actor_id, success.data) == (
        "service_account",
        None,
        {"prefix": prefix},
    )
    assert "CRM sync" in success.actor_label
    assert success.workspace_id == account.workspace_id
    wrong_secret = f"gpsa_{prefix}_{'A' * 43}"
    unknown = f"gpsa_00000000_{secret}"
    assert refusal_reason(wrong_secret) == "wrong secret"
    assert refusal_reason(unknown) == "unknown prefix"
    assert refusal_reason(f"gpsa_{prefix}_short") == "malformed"
    assert refusal_reason("not-a-token") == "malformed"
    failures = list(events("service_account.authentication_failed"))
    assert [(e.data["prefix"], e.data["reason"], e.outcome) for e in failures] == [
        (prefix, "wrong secret", "denied"),
        ("00000000", "unknown prefix", "denied"),
        (prefix, "malformed", "denied"),
        ("", "malformed", "denied"),
    ]
    assert all(secret.encode() not in bytes(event.canonical) for event in AuditEvent.objects.all())


def test_the_digest_never_reaches_the_row_capture(owner, account):
    """A write outside the services is captured for the ledger, without the token's digest."""
    issued = issue(owner, account)
    ServiceAccountToken.objects.filter(pk=issued.token.pk).update(revoked_at=timezone.now())
    captured = RowChange.objects.get(
        table_name="workflows_serviceaccounttoken", row_id=str(issued.token.pk), operation="UPDATE"
    )
    assert "digest" not in captured.new
    assert "digest" not in captured.old
    assert captured.new["prefix"] == issued.token.prefix


# --- The API: scopes, workspace, usage events -------------------------------------------------------


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_a_read_scope_reads_its_own_workspace_only_and_writes_nothing(world, owner, account):
    """GIVEN a token with workflows:read WHEN it calls the API THEN it lists and reads its own
    workspace's workflows, sees nothing of another workspace, and may not create."""
    client = bearer(issue(owner, account).plaintext)
    listed = client.get(reverse("api-workflow-list"))
    assert listed.status_code == 200, listed.content
    assert {row["id"] for row in listed.json()["results"]} == {world.workflows["own"].pk}
    assert client.get(reverse("api-workflow-detail", args=[world.workflows["own"].pk])).status_code == 200
    assert client.get(reverse("api-workflow-detail", args=[world.workflows["sibling"].pk])).status_code == 404
    assert client.get(reverse("api-workflow-detail", args=[world.workflows["foreign"].pk])).status_code == 404
    created = client.post(
        reverse("api-workflow-list"), {"workspace": world.ws.pk, "name": "x"}, format="json"
    )
    assert created.status_code == 403
    assert client.get(reverse("api-service-account-list")).status_code == 403
    used = [(e.data["method"], e.data["status"]) for e in events("service_account.used")]
    assert used == [("GET", 200), ("GET", 200), ("GET", 404), ("GET", 404), ("POST", 403), ("GET", 403)]
    assert all(e.actor_type == "service_account" for e in events("service_account.used"))


def test_the_decision_point_confines_a_principal_to_its_scopes_and_workspace(world, owner, account):
    principal = services.service_account_authenticate(token=issue(owner, account).plaintext)
    assert decide(principal, "workflow.view", world.workflows["own"]).allowed
    assert not decide(principal, "workflow.view", world.workflows["sibling"]).allowed
    assert not decide(principal, "workflow.view", world.workflows["foreign"]).allowed
    for action in (
        "workflow.edit",
        "execution.trigger",
        "admin.access",
        "service_account.manage",
        "nonsense",
    ):
        assert not decide(principal, action).allowed, action


def test_a_bad_bearer_token_gets_401_and_a_failure_event(world):
    response = bearer("gpsa_deadbeef_" + "x" * 43).get(reverse("api-workflow-list"))
    assert response.status_code == 401
    assert events("service_account.authentication_failed").get().data["reason"] == "unknown prefix"
    assert not events("service_account.used").exists()


def test_a_service_account_never_opens_the_control_panel(owner, account, client):
    token = issue(owner, account).plaintext
    response = client.get(reverse("admin:index"), HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_owners_manage_service_accounts_over_the_api(world, owner, crm):
    client = APIClient()
    client.force_authenticate(owner)
    created = client.post(reverse("api-service-account-list"), {
        "integration": crm.pk, "name": "CRM sync", "scopes": ["workflows:read", "executions:read"]}, format="json")  # fmt: skip
    assert created.status_code == 201, created.content
    again = client.post(reverse("api-service-account-list"),
                        {"integration": crm.pk, "name": "other", "scopes": ["workflows:read"]}, format="json")  # fmt: skip
    assert again.status_code == 400
    assert "integration" in again.json()
    rotated = client.post(reverse("api-service-account-rotate", args=[created.json()["id"]]))
    assert rotated.status_code == 201
    assert rotated["Cache-Control"] == "no-store"
    assert TOKEN_PATTERN.match(rotated.json()["token"])
    detail = client.get(reverse("api-service-account-detail", args=[created.json()["id"]])).json()
    assert [t["prefix"] for t in detail["tokens"]] == [rotated.json()["prefix"]]
    assert "digest" not in str(detail)
    assert rotated.json()["token"] not in str(detail)


# --- The daily sweep --------------------------------------------------------------------------------


def test_the_sweep_warns_once_when_rotation_is_due_soon(
    world, owner, account, django_capture_on_commit_callbacks
):
    days_left = 10
    due = timezone.now() + timedelta(days=days_left)
    ServiceAccount.objects.filter(pk=account.pk).update(rotation_due_at=due, last_used_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        first = services.service_accounts_sweep()
    second = services.service_accounts_sweep()
    assert (first.warned, second.warned) == ([account.pk], [])
    warning = events("service_account.rotation_warning").get()
    assert warning.data["days_left"] in (days_left - 1, days_left)
    assert warning.actor_type == "system"
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert "Rotate the token" in mail.outbox[0].subject
    account.refresh_from_db()
    assert account.is_active


def test_the_sweep_disables_an_overdue_account_once(
    world, owner, account, django_capture_on_commit_callbacks
):
    ServiceAccount.objects.filter(pk=account.pk).update(
        rotation_due_at=timezone.now() - timedelta(minutes=1), last_used_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        first = services.service_accounts_sweep()
    second = services.service_accounts_sweep()
    assert (first.disabled_overdue, second.disabled_overdue, second.disabled_dormant) == (
        [account.pk],
        [],
        [],
    )
    account.refresh_from_db()
    assert (account.is_active, account.disabled_reason) == (False, DisabledReason.ROTATION_OVERDUE)
    assert events("service_account.disabled").get().data["reason"] == "rotation_overdue"
    assert "disabled" in mail.outbox[0].subject


def test_the_sweep_disables_dormant_accounts_counting_never_used_ones_from_creation(
    world, owner, crm, account
):
    used = services.service_account_create(
        actor=owner, integration=Integration.objects.create(workspace=world.ws, name="ERP", slug="erp", kind="erp"),
        name="ERP sync", scopes=["executions:read"],
    )  # fmt: skip
    backdate(account, 31)  # never used, created 31 days ago
    backdate(used, 31, last_used_at=timezone.now() - timedelta(days=2))
    result = services.service_accounts_sweep()
    assert result.disabled_dormant == [account.pk]
    account.refresh_from_db()
    used.refresh_from_db()
    assert (account.is_active, account.disabled_reason, used.is_active) == (False, "dormant", True)
    assert services.service_accounts_sweep().disabled_dormant == []  # idempotent
    assert events("service_account.disabled").count() == 1


def test_the_sweep_is_a_daily_beat_task(db):
    assert (
        settings.CELERY_BEAT_SCHEDULE["service-accounts-sweep"]["task"] == "workflows.service_accounts_sweep"
    )
    assert tasks.service_accounts_sweep.delay().get() == {
        "warned": 0,
        "disabled_overdue": 0,
        "disabled_dormant": 0,
    }


# --- Reactivation: a workspace owner's decision only ------------------------------------------------


def test_an_owner_reactivates_a_dormant_account_and_its_dormancy_clock_restarts(owner, account):
    backdate(account, 31)
    services.service_accounts_sweep()
    reactivated = services.service_account_reactivate(
        actor=owner, account=account, note="integration is back"
    )
    assert reactivated.is_active
    assert reactivated.disabled_reason == ""
    assert events("service_account.reactivated").get().data["was_disabled_for"] == "dormant"
    assert services.service_accounts_sweep().disabled_dormant == []


@pytest.mark.parametrize("role", ["compliance_officer", "platform_admin"])
def test_nobody_but_an_owner_reactivates_and_the_refusal_is_recorded(world, owner, account, role):
    services.service_account_disable(actor=owner, account=account, reason="manual", note="paused")
    with pytest.raises(AccessDenied):
        services.service_account_reactivate(actor=world.users[role], account=account)
    account.refresh_from_db()
    assert not account.is_active
    denial = events("access.denied").get()
    assert denial.data["action"] == "service_account.reactivate"
    assert denial.actor_id == world.users[role].pk
    assert not events("service_account.reactivated").exists()


def test_an_overdue_account_is_rotated_before_it_is_reactivated(owner, account):
    ServiceAccount.objects.filter(pk=account.pk).update(rotation_due_at=timezone.now() - timedelta(days=1))
    services.service_accounts_sweep()
    with pytest.raises(ValidationError) as refused:
        services.service_account_reactivate(actor=owner, account=account)
    assert "issue a new token first" in str(refused.value)
    issued = issue(owner, account)
    assert refusal_reason(issued.plaintext) == "account disabled"
    services.service_account_reactivate(actor=owner, account=account)
    assert services.service_account_authenticate(token=issued.plaintext).pk == account.pk


# --- The control panel --------------------------------------------------------------------------------


def test_the_admin_shows_rotation_clocks_last_use_and_tokens_without_digests(world, owner, account, client):
    issued = issue(owner, account)
    other = services.service_account_create(
        actor=owner, integration=Integration.objects.create(workspace=world.ws, name="ERP", slug="erp", kind="erp"),
        name="ERP sync", scopes=["executions:trigger"],
    )  # fmt: skip
    ServiceAccount.objects.filter(pk=other.pk).update(
        rotation_due_at=timezone.now() - timedelta(days=3, hours=1)
    )
    client.force_login(owner)
    page = client.get(reverse("admin:workflows_serviceaccount_changelist")).content.decode()
    assert re.search(r"\b(89|90) d left", page)
    assert "overdue by 4 d" in page
    assert "rotation-overdue" in page
    detail = client.get(reverse("admin:workflows_serviceaccount_change", args=[account.pk])).content.decode()
    token = ServiceAccountToken.objects.get(pk=issued.token.pk)
    assert token.prefix in detail
    assert token.digest not in detail
    assert "Rotate the token" in detail
    assert "Reactivate" not in detail


def test_issuing_a_token_in_the_admin_shows_it_once(owner, account, client):
    client.force_login(owner)
    url = reverse("admin:workflows_serviceaccount_token", args=[account.pk])
    assert "shown once" in client.get(url).content.decode()
    response = client.post(url)
    plaintext = TOKEN_PATTERN.search(
        response.content.decode().split('service-account-token">')[1].split("<")[0]
    )
    assert plaintext is not None
    assert "no-store" in response["Cache-Control"]
    detail = client.get(reverse("admin:workflows_serviceaccount_change", args=[account.pk])).content.decode()
    assert plaintext.string not in detail
    assert services.service_account_authenticate(token=plaintext.string).pk == account.pk


def test_admin_disable_and_reactivate_go_through_the_services(world, owner, account, client):
    client.force_login(owner)
    disable = reverse("admin:workflows_serviceaccount_disable", args=[account.pk])
    assert client.post(disable, {"reason": "incident", "note": "leak"}).status_code == 302
    account.refresh_from_db()
    assert account.disabled_reason == "incident"
    reactivate = reverse("admin:workflows_serviceaccount_reactivate", args=[account.pk])
    client.force_login(world.users["compliance_officer"])
    assert client.post(reactivate, {"note": "please"}).status_code == 403
    # Refused by the account's own permission, as its change page is; the refusal is recorded.
    assert events("access.denied").get().data["action"] == "service_account.manage"
    account.refresh_from_db()
    assert not account.is_active
    client.force_login(owner)
    assert client.post(reactivate, {"note": "rotated everything"}).status_code == 302
    account.refresh_from_db()
    assert account.is_active


@pytest.mark.parametrize("page", ["reactivate", "disable", "token"])
@pytest.mark.parametrize(
    ("role", "scope", "expected"),
    [
        ("platform_admin", "own", 403),
        ("platform_admin", "sibling", 403),
        ("compliance_officer", "own", 403),
        ("auditor", "own", 403),
        ("workspace_owner", "sibling", 404),
        ("workspace_owner", "foreign", 404),
    ],
)
def test_account_action_pages_follow_the_accounts_own_permission(world, client, page, role, scope, expected):
    """GIVEN a disabled service account in some workspace WHEN someone who may not see that account
    (its change page is refused to them or it is not theirs) opens its reactivate, disable or token
    page THEN the page is refused or missing, never shown: its name and workspace stay hidden."""
    from tests.conftest import mfa_complete
    from tests.workflows.service_account_world import service_accounts_of

    account = service_accounts_of(world)[scope]
    ServiceAccount.objects.filter(pk=account.pk).update(
        is_active=False, disabled_reason="manual", disabled_at=timezone.now()
    )
    user = world.users[role]
    client.force_login(user)
    mfa_complete(client, user)
    change = client.get(reverse("admin:workflows_serviceaccount_change", args=[account.pk]))
    assert change.status_code in (302, 403)  # the account's own page is refused or missing
    response = client.get(reverse(f"admin:workflows_serviceaccount_{page}", args=[account.pk]))
    assert response.status_code == expected
    assert account.name not in response.content.decode()
    assert not ServiceAccountToken.objects.filter(service_account=account).exists()


def test_an_owner_opens_the_reactivate_page_of_their_own_account(world, client):
    """GIVEN a disabled account of the owner's workspace WHEN the owner opens its reactivate page
    THEN it is shown (200), naming the account."""
    from tests.conftest import mfa_complete
    from tests.workflows.service_account_world import service_accounts_of

    account = service_accounts_of(world)["own"]
    ServiceAccount.objects.filter(pk=account.pk).update(
        is_active=False, disabled_reason="manual", disabled_at=timezone.now()
    )
    owner = world.users["workspace_owner"]
    client.force_login(owner)
    mfa_complete(client, owner)
    response = client.get(reverse("admin:workflows_serviceaccount_reactivate", args=[account.pk]))
    assert response.status_code == 200
    assert account.name in response.content.decode()


def test_admin_add_creates_through_the_service(owner, crm, client):
    client.force_login(owner)
    response = client.post(reverse("admin:workflows_serviceaccount_add"), {
        "integration": crm.pk, "name": "CRM sync", "scopes": ["workflows:read"], "rotation_period_days": 60})  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    account = ServiceAccount.objects.get(integration=crm)
    assert account.rotation_period_days == 60
    assert events("service_account.created").exists()


def test_the_dashboard_counts_service_accounts_for_those_who_manage_them(world, owner, account, client):
    backdate(account, 31)
    services.service_accounts_sweep()
    client.force_login(owner)
    page = client.get(reverse("admin:index")).content.decode()
    assert "1 dormant (disabled)" in page
    assert "0 rotation overdue" in page
    client.force_login(world.users["compliance_officer"])
    assert "dormant (disabled)" not in client.get(reverse("admin:index")).content.decode()
