"""The canary: a credential holding a unique marker is driven through every flow that touches
credentials; the marker must then appear nowhere — pages, API answers, error pages and reports,
the ledger, logs, exports, a failing outbound call, nor a dump of the main database."""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import uuid

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from audit.models import AuditEvent
from tests.conftest import build_world
from workflows.credentials import services as credentials
from workflows.credentials.models import Credential
from workflows.integrations.models import Integration

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "secrets"])


@pytest.fixture
def captured_logs(settings):
    """Everything the project's own log handlers write, at every level, into one buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler) and h.filters]
    assert handlers, "the project's console handler (with its filters) is installed on the root logger"
    previous = [(h, h.setStream(buffer)) for h in handlers]
    level = root.level
    root.setLevel(logging.DEBUG)
    yield buffer
    root.setLevel(level)
    for handler, stream in previous:
        handler.setStream(stream)


def _pg_dump(alias: str) -> str:
    database = connections[alias].settings_dict
    env = {**os.environ, "PGPASSWORD": database.get("PASSWORD") or ""}
    command = [shutil.which("pg_dump") or "/usr/bin/pg_dump", "--data-only", "-h", database["HOST"] or "127.0.0.1", "-p", str(database["PORT"] or 5432),
               "-U", database["USER"] or "postgres", database["NAME"]]  # fmt: skip
    # Fixed arguments: pg_dump of our own test database.
    return subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout  # noqa: S603


def test_the_canary_appears_nowhere(settings, captured_logs):
    canary = f"CANARY{uuid.uuid4().hex}"
    settings.DEBUG = False
    settings.ADMINS = [("Ops", "ops@example.test")]
    world = build_world()
    owner = world.users["workspace_owner"]
    integration = Integration.objects.create(workspace=world.ws, name="CRM", slug="crm", kind="crm",
                                             endpoint_url="https://127.0.0.1:9/api")  # fmt: skip
    seen: list[tuple[str, str]] = []

    # Control panel: add, list, change, rotate, and the ledger's pages.
    browser = Client(raise_request_exception=False)
    browser.force_login(owner)
    browser.post(reverse("admin:workflows_credential_add"),
                 {"integration": integration.pk, "name": "api_key", "value": f"sk-{canary}-1"})  # fmt: skip
    credential = Credential.objects.using("secrets").get()
    change_url = reverse("admin:workflows_credential_change", args=[credential.pk])
    for url in (reverse("admin:workflows_credential_changelist"), change_url,
                reverse("admin:audit_auditevent_changelist")):  # fmt: skip
        seen.append((url, browser.get(url).content.decode()))
    browser.post(change_url, {"new_value": f"sk-{canary}-2", "versions-TOTAL_FORMS": "0",
                              "versions-INITIAL_FORMS": "0"})  # fmt: skip
    seen.append((change_url, browser.get(change_url).content.decode()))
    for event in AuditEvent.objects.all()[:50]:
        url = reverse("admin:audit_auditevent_change", args=[event.pk])
        seen.append((url, browser.get(url).content.decode()))

    # API: create, list, retrieve, stage and promote, and refused input that carries the value.
    api = APIClient()
    api.force_authenticate(owner)
    answers = [
        api.post(
            reverse("api-credential-list"),
            {"integration": integration.pk, "name": "token", "value": f"ghp_{canary}"},
            format="json",
        ),
        api.get(reverse("api-credential-list")),
        api.get(reverse("api-credential-detail", args=[credential.pk])),
        api.post(
            reverse("api-credential-versions", args=[credential.pk]),
            {"value": f"sk-{canary}-3", "promote": True},
            format="json",
        ),
        api.post(
            reverse("api-credential-list"),
            {"integration": integration.pk, "name": "x" * 500, "value": f"sk-{canary}-4"},
            format="json",
        ),
        api.post(
            reverse("api-credential-list"), {"integration": "nope", "value": f"sk-{canary}-5"}, format="json"
        ),
        api.post(
            reverse("api-credential-list"), f'{{"value": "{canary}", broken', content_type="application/json"
        ),
    ]
    assert [a.status_code for a in answers] == [201, 200, 200, 201, 400, 400, 400]
    seen += [("api", a.content.decode()) for a in answers]

    # A failing outbound call (the endpoint is refused: loopback) while testing a staged value.
    staged = credentials.credential_stage(actor=owner, credential=credential, value=f"Bearer {canary}")
    tested = credentials.credential_test(actor=owner, version=staged)
    assert tested.test_ok is False
    seen.append(("test message", tested.test_message))

    # An error page and the error report e-mailed to the administrators, DEBUG off.
    settings.ROOT_URLCONF = "tests.security.canary_urls"
    failing = browser.get(f"/canary-fails/{credential.pk}/")
    assert failing.status_code == 500
    seen.append(("500 page", failing.content.decode()))
    assert mail.outbox, "the error report was e-mailed"
    seen += [
        ("mail", message.body + "".join(str(a) for a in message.alternatives)) for message in mail.outbox
    ]

    # A careless log line in code that holds the value.
    logging.getLogger("workflows").error("calling CRM with key=%s", credentials.credential_value_resolve(
        credential_id=credential.pk))  # fmt: skip

    # The ledger, exports (dumpdata of both databases) and a dump of the main database.
    seen += [("ledger", bytes(e.canonical).decode()) for e in AuditEvent.objects.all()]
    for alias in ("default", "secrets"):
        out = io.StringIO()
        call_command("dumpdata", database=alias, stdout=out, exclude=["contenttypes", "auth.permission"])
        seen.append((f"dumpdata {alias}", out.getvalue()))
    seen.append(("pg_dump main", _pg_dump("default")))
    seen.append(("pg_dump secrets", _pg_dump("secrets")))
    seen.append(("logs", captured_logs.getvalue()))

    assert "calling CRM with key=" in captured_logs.getvalue()  # the log line was written, redacted
    leaks = [where for where, text in seen if canary in text]
    assert leaks == []
    # And the values are really there, encrypted: the flows did run.
    assert credentials.credential_value_resolve(credential_id=credential.pk) == f"sk-{canary}-3"
    assert settings.DATABASES["secrets"]["NAME"] != settings.DATABASES["default"]["NAME"]
