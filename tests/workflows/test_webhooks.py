"""Signed webhooks: a run per correctly signed request; forged, stale, replayed, oversized or
non-JSON requests refused with a clear JSON answer (and a ledger event when the workflow is
known), never a 500; secrets in the secrets store, rotated without a gap."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from governance.access.decision import AccessDenied, decide
from tests.workflows.test_executions import active_workflow, drain
from workflows.executions import halts, hooks
from workflows.executions.models import Execution, WebhookSecret
from workflows.executions.principals import WorkflowTriggerPrincipal

pytestmark = pytest.mark.django_db(databases=["default", "secrets"])


@pytest.fixture(autouse=True)
def _fresh_rate_window():
    cache.clear()


def hooked(world, path="/tickets", slug="intake"):
    definition = {
        "trigger": {"type": "webhook", "path": path},
        "steps": [{"id": "take", "type": "transform", "expression": "{'ticket': input.id}", "next": None}],
    }
    workflow = active_workflow(world, definition, slug=slug)
    secret = hooks.webhook_secret_issue(actor=world.users["workspace_owner"], workflow=workflow)
    return workflow, secret


def post(client, world, body: bytes, secret: str | None, *, path="tickets", timestamp=None, signature=None):
    now = int(timezone.now().timestamp())  # the world's clock (the tests fix it in business hours)
    timestamp = str(now) if timestamp is None else timestamp.replace("HOUR_AGO", str(now - 3600))
    headers = {"HTTP_X_PORTAL_TIMESTAMP": timestamp}
    if signature is None and secret is not None:
        signature = hooks.signature_of(secret, timestamp, body)
    if signature is not None:
        headers["HTTP_X_PORTAL_SIGNATURE"] = signature
    url = reverse("webhook", args=[world.ws.pk, path])
    return client.post(url, data=body, content_type="application/json", **headers)


def test_a_signed_request_starts_a_run_and_a_replay_does_not(shop, client):
    workflow, secret = hooked(shop)
    body = json.dumps({"id": 42}).encode()
    answer = post(client, shop, body, secret)
    assert answer.status_code == 202, answer.content
    execution = Execution.objects.get(pk=answer.json()["execution"])
    assert (execution.workflow_id, execution.trigger_kind) == (workflow.pk, "webhook")
    assert execution.trigger_source == f"webhook:webhook of workflow {workflow.name} (#{workflow.pk})"
    assert drain(execution) == ["succeeded"]
    # The same signed request again (a replay inside the window): refused, no second run.
    timestamp = str(int(timezone.now().timestamp()))
    first = post(client, shop, b'{"id": 7}', secret, timestamp=timestamp)
    again = post(client, shop, b'{"id": 7}', secret, timestamp=timestamp)
    assert (first.status_code, again.status_code) == (202, 409)
    assert Execution.objects.filter(workflow=workflow).count() == 2
    assert AuditEvent.objects.get(action="webhook.refused").data["reason"] == "replayed"


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"signature": "sha256=" + "0" * 64}, 401, "signature"),
        ({"signature": "md5=abc"}, 401, "signature"),
        ({"timestamp": "yesterday"}, 401, "timestamp"),
        ({"timestamp": "HOUR_AGO"}, 401, "stale"),
        ({"secret": "whsec_not-the-secret"}, 401, "signature"),
    ],
)
def test_forged_or_stale_requests_are_refused_and_recorded(shop, client, change, status, reason):
    workflow, secret = hooked(shop)
    answer = post(
        client, shop, b'{"id": 1}', change.get("secret", secret),
        timestamp=change.get("timestamp"), signature=change.get("signature"),
    )  # fmt: skip
    assert answer.status_code == status
    assert answer["Content-Type"] == "application/json"
    assert "detail" in answer.json()
    refused = AuditEvent.objects.get(action="webhook.refused")
    assert (refused.data["reason"], refused.target_id, refused.outcome) == (
        reason,
        str(workflow.pk),
        "denied",
    )
    assert not Execution.objects.exists()


def test_a_request_without_a_signature_is_refused(shop, client):
    hooked(shop)
    assert post(client, shop, b'{"id": 1}', None).status_code == 401


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"id": "\\u0000"}', b"[" * 5000 + b"]" * 5000]
)
def test_a_body_that_is_not_a_storable_json_object_gets_400(shop, client, body):
    _, secret = hooked(shop)
    answer = post(client, shop, body, secret)
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("The body must be a JSON object")
    assert not Execution.objects.exists()


def test_an_oversized_body_gets_413_before_it_is_read(shop, client, settings):
    settings.WEBHOOK_MAX_BYTES = 1024
    _, secret = hooked(shop)
    body = json.dumps({"blob": "x" * 2000}).encode()
    answer = post(client, shop, body, secret)
    assert answer.status_code == 413
    assert "limit is 1,024" in answer.json()["detail"]


def test_unknown_addresses_answer_404_alike(shop, client):
    _, secret = hooked(shop)
    assert post(client, shop, b"{}", secret, path="nothing-here").status_code == 404
    foreign = reverse("webhook", args=[shop.foreign.pk, "tickets"])
    assert client.post(foreign, data=b"{}", content_type="application/json").status_code == 404
    assert (
        client.post(
            reverse("webhook", args=[999999, "tickets"]), data=b"{}", content_type="application/json"
        ).status_code
        == 404
    )
    assert client.get(reverse("webhook", args=[shop.ws.pk, "tickets"])).status_code == 405
    for path in ("tick%00ets", "tick\u00e9ts", "a" * 101, "tickets%2F..%2Fx"):
        assert (
            client.post(
                f"/hooks/{shop.ws.pk}/{path}", data=b"{}", content_type="application/json"
            ).status_code
            == 404
        )
    assert (
        client.post(f"/hooks/{10**30}/tickets", data=b"{}", content_type="application/json").status_code
        == 404
    )


def test_a_halted_workspace_answers_423(shop, client):
    _, secret = hooked(shop)
    halts.halt_raise(actor=shop.users["compliance_officer"], workspace=shop.ws, reason="INC")
    answer = post(client, shop, b'{"id": 1}', secret)
    assert answer.status_code == 423
    assert "halted" in answer.json()["detail"]
    assert AuditEvent.objects.get(action="execution.refused").data["kind"] == "webhook"


def test_requests_past_the_rate_are_refused(shop, client, settings):
    settings.WEBHOOK_RATE_PER_MINUTE = 2
    _, secret = hooked(shop)
    codes = [post(client, shop, json.dumps({"id": n}).encode(), secret).status_code for n in range(3)]
    assert codes == [202, 202, 429]


def test_a_new_secret_leaves_the_old_one_valid_for_the_grace_only(shop, client, settings):
    workflow, old = hooked(shop)
    new = hooks.webhook_secret_issue(actor=shop.users["workspace_owner"], workflow=workflow)
    assert new != old
    assert post(client, shop, b'{"id": 1}', old).status_code == 202  # callers switch without a gap
    assert post(client, shop, b'{"id": 2}', new).status_code == 202
    WebhookSecret.objects.using("secrets").filter(workflow_id=workflow.pk, number=1).update(
        valid_until="2000-01-01T00:00:00Z"
    )
    assert post(client, shop, b'{"id": 3}', old).status_code == 401
    issued = AuditEvent.objects.filter(action="webhook.secret_issued").order_by("id")
    assert [event.data["version"] for event in issued] == [1, 2]
    assert old not in json.dumps([event.data for event in issued])  # fingerprints only
    rows = WebhookSecret.objects.using("secrets").filter(workflow_id=workflow.pk)
    assert all(row.value.startswith("whsec_") for row in rows)  # decrypted by the field
    with pytest.raises(AccessDenied):
        hooks.webhook_secret_issue(actor=shop.users["workflow_operator"], workflow=workflow)


def test_two_workflows_on_one_path_are_told_apart_by_their_secrets(shop, client):
    first, first_secret = hooked(shop, slug="one")
    second, second_secret = hooked(shop, slug="two")
    to_second = post(client, shop, b'{"id": 5}', second_secret)
    to_first = post(client, shop, b'{"id": 6}', first_secret)
    assert Execution.objects.get(pk=to_second.json()["execution"]).workflow_id == second.pk
    assert Execution.objects.get(pk=to_first.json()["execution"]).workflow_id == first.pk


def test_the_webhook_principal_may_trigger_its_workspace_only(shop):
    workflow, _ = hooked(shop)
    principal = WorkflowTriggerPrincipal.of(workflow, "webhook")
    assert decide(principal, "execution.trigger", workflow).allowed
    assert not decide(principal, "execution.trigger", shop.workflows["foreign"]).allowed
    assert not decide(principal, "execution.view", workflow).allowed


def test_an_owner_issues_a_secret_in_the_control_panel_and_sees_it_once(shop, client):
    workflow = active_workflow(shop, {
        "trigger": {"type": "webhook", "path": "/tickets"},
        "steps": [{"id": "take", "type": "transform", "expression": "input", "next": None}],
    }, slug="panel")  # fmt: skip
    url = reverse("admin:workflows_workflow_webhook_secret", args=[workflow.pk])
    client.force_login(shop.users["workspace_owner"])
    assert "No secret yet" in client.get(url).content.decode()
    issued = client.post(url)
    assert "no-store" in issued["Cache-Control"]
    value = issued.context["issued"]
    assert value.startswith("whsec_")
    assert value in issued.content.decode()
    later = client.get(url).content.decode()
    assert value not in later
    assert WebhookSecret.objects.using("secrets").get(workflow_id=workflow.pk).fingerprint in later
    assert post(client, shop, b'{"id": 1}', value).status_code == 202
    client.force_login(shop.users["compliance_officer"])
    assert client.post(url).status_code == 403


def test_hostile_headers_and_bodies_are_refused_never_a_500(shop, client):
    _, secret = hooked(shop)
    assert post(client, shop, b'{"id": 1}', secret, timestamp="1" + "0" * 400).status_code == 401
    assert post(client, shop, b'{"id": 1}', None, signature="sha256=\xe9" + "a" * 63).status_code == 401
    assert post(client, shop, b'{"id": 1}', None, signature="sha256=" + "A" * 64).status_code == 401
    huge = b'{"n": ' + b"9" * 5000 + b"}"
    assert post(client, shop, huge, secret).status_code == 400


def test_a_signed_request_refused_under_a_halt_is_not_accepted_again_after_the_release(shop, client):
    _, secret = hooked(shop)
    halt = halts.halt_raise(actor=shop.users["compliance_officer"], workspace=shop.ws, reason="INC")
    timestamp = str(int(timezone.now().timestamp()))
    assert post(client, shop, b'{"id": 9}', secret, timestamp=timestamp).status_code == 423
    halts.halt_release(actor=shop.users["workspace_owner"], halt=halt, reason="ok")
    assert post(client, shop, b'{"id": 9}', secret, timestamp=timestamp).status_code == 409
    assert not Execution.objects.exists()


def test_a_flood_of_forgeries_writes_one_refusal_a_minute(shop, client, settings):
    settings.WEBHOOK_RATE_PER_MINUTE = 1000
    hooked(shop)
    for _ in range(20):
        assert post(client, shop, b'{"id": 1}', "whsec_forged").status_code == 401
    assert AuditEvent.objects.filter(action="webhook.refused").count() == 1


def test_the_engines_idempotency_keys_are_reserved(shop):
    from django.core.exceptions import ValidationError

    from tests.workflows.test_executions import trigger

    workflow, _ = hooked(shop)
    for key in ("schedule:2026-12-04T05:00Z", "webhook:abc"):
        with pytest.raises(ValidationError, match="the engine's own"):
            trigger(shop, workflow, idempotency_key=key)


def test_a_leaked_secret_is_revoked_at_once_with_the_one_in_its_grace(shop, client):
    from django.core.exceptions import ValidationError as Refused
    from django.urls import reverse

    workflow, old = hooked(shop)
    new = hooks.webhook_secret_issue(actor=shop.users["workspace_owner"], workflow=workflow)
    with pytest.raises(Refused, match="Say why"):
        hooks.webhook_secrets_revoke(actor=shop.users["workspace_owner"], workflow=workflow, reason=" ")
    with pytest.raises(AccessDenied):
        hooks.webhook_secrets_revoke(actor=shop.users["compliance_officer"], workflow=workflow, reason="x")
    url = reverse("admin:workflows_workflow_webhook_secret", args=[workflow.pk])
    client.force_login(shop.users["workspace_owner"])
    assert "Reason" in client.get(url).content.decode()
    assert "Say why" in client.post(url, {"revoke": "1", "reason": ""}).content.decode()
    client.post(url, {"revoke": "1", "reason": "INC-5: secret in a public repository"})
    assert post(client, shop, b'{"id": 1}', old).status_code == 401
    assert post(client, shop, b'{"id": 2}', new).status_code == 401
    rows = WebhookSecret.objects.using("secrets").filter(workflow_id=workflow.pk)
    assert {row.status for row in rows} == {"revoked"}
    assert all(row.value is None for row in rows)  # the values are erased
    event = AuditEvent.objects.get(action="webhook.secrets_revoked")
    assert event.data == {"versions": [1, 2], "reason": "INC-5: secret in a public repository"}
    fresh = hooks.webhook_secret_issue(actor=shop.users["workspace_owner"], workflow=workflow)
    assert post(client, shop, b'{"id": 3}', fresh).status_code == 202
