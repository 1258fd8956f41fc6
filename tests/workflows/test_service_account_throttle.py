"""Failed service-account token attempts are throttled per token prefix and per client address:
past the limit a locked address gets 429 with Retry-After before any token is looked up, a locked
prefix refuses only wrong secrets, and the lockout is recorded once as
``service_account.locked_out``."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from workflows.integrations.models import Integration
from workflows.service_accounts import services
from workflows.service_accounts.principals import SERVICE_ACCOUNT_TOKENS

LIMIT = 3


@pytest.fixture(autouse=True)
def _small_limit(settings):
    settings.TOKEN_THROTTLE_FAILURES = LIMIT
    settings.TOKEN_THROTTLE_LOCKOUT_SECONDS = 600


@pytest.fixture
def token(world) -> str:
    owner = world.users["workspace_owner"]
    crm = Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm")
    account = services.service_account_create(
        actor=owner, integration=crm, name="CRM sync", scopes=["workflows:read"]
    )
    return services.service_account_token_issue(actor=owner, account=account).plaintext


def _call(token: str, address: str):
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(reverse("api-workflow-list"))


def _wrong_secret(token: str) -> str:
    return f"gpsa_{SERVICE_ACCOUNT_TOKENS.parse(token).prefix}_{'A' * 43}"


def test_wrong_secrets_for_one_prefix_lock_the_prefix_out_but_not_its_holder(world, token):
    """GIVEN a service account's token WHEN its prefix is tried LIMIT times with a wrong secret from
    several addresses THEN a further wrong secret gets 429 with Retry-After, from any address,
    while the real token still gets 200; one lockout event, none for the attempts refused
    during it."""
    for number in range(LIMIT):
        assert _call(_wrong_secret(token), f"198.51.100.{number + 1}").status_code == 401
    refused = _call(_wrong_secret(token), "203.0.113.4")
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 600
    assert _call(token, "203.0.113.5").status_code == 200
    locked = AuditEvent.objects.get(action="service_account.locked_out")
    assert locked.data["locked"] == "prefix"
    assert locked.workspace_id == world.ws.pk
    assert AuditEvent.objects.filter(action="service_account.authentication_failed").count() == LIMIT


def test_bad_tokens_from_one_address_lock_that_address_out(world, token):
    address = "192.0.2.10"
    for number in range(LIMIT):
        assert _call(f"gpsa_0000000{number}_" + "C" * 43, address).status_code == 401
    assert _call(token, address).status_code == 429
    assert _call(token, "192.0.2.11").status_code == 200
    locked = AuditEvent.objects.get(action="service_account.locked_out")
    assert (locked.data["locked"], locked.data["address"]) == ("address", address)
