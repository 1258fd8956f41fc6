"""``http_request``: one call to an integration's endpoint through the outbound client (the
network boundary, TLS 1.2+, the integration's SPKI pins), authenticated with the credential
version the step was pinned to at its first claim, as the integration's service account: before any
I/O the decision point must allow the account ``integration.read`` (GET, HEAD) or
``integration.write`` (any other method) on its integration — no account, a disabled one or a
missing scope is a final ``ServiceAccountRefused``. The ledger's ``data.accessed``/``data.written``
names the account.

The request carries ``Idempotency-Key: <execution>:<step>``, the same on every delivery, so an
API that honours it applies a repeated write once. A refusal by the boundary and an HTTP 4xx are
final; a transport error, HTTP 429 and 5xx are retryable (the engine schedules the next attempt).
"""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from governance.core.outbound.client import OutboundError, OutboundResponse
from workflows.credentials.services import credential_value_resolve
from workflows.executions.expressions import ExpressionError, evaluate
from workflows.executions.steps.base import StepEnv, StepError, StepOutcome
from workflows.integrations.models import Integration
from workflows.integrations.outbound.client import IntegrationClient
from workflows.service_accounts.selectors import acting_account

MAX_BODY_CHARS = 32 * 1024
MAX_REQUEST_BYTES = 256 * 1024
READ_METHODS = ("GET", "HEAD")


def client_for(integration: Integration) -> IntegrationClient:
    """The client a step calls ``integration`` with (tests give it their own certificate authority)."""
    return IntegrationClient.for_integration(integration, timeout=settings.EXECUTION_HTTP_TIMEOUT_SECONDS)


def integration_of(workspace_id: int, slug: str) -> Integration | None:
    return (
        Integration.objects.select_related("workspace__organization")
        .filter(workspace_id=workspace_id, slug=slug)
        .first()
    )


def pinned_refusal(integration: Integration, env: StepEnv) -> str:
    """Why the step may not call ``integration`` with what it pinned at its first claim: another
    integration answers to its name now (its credential must not go there); "" when it may."""
    pinned = env.pins.get("integration")
    if pinned is not None and pinned != integration.pk:
        return (
            f"The integration {integration.slug!r} is not the one this step started with: its credential "
            "is not sent elsewhere. Start a new run."
        )
    return ""


def acting_as(integration: Integration, action: str):
    """The integration's service account, allowed ``action`` by the decision point; a final
    ``ServiceAccountRefused`` failure, before any I/O, otherwise."""
    principal, refusal = acting_account(integration, action)
    if principal is None:
        raise StepError("ServiceAccountRefused", refusal)
    return principal


def _payload(step: dict, context: dict) -> bytes | None:
    """The JSON the step sends: the value of its ``body`` expression (none without one)."""
    if not step.get("body"):
        return None
    try:
        value = evaluate(step["body"], context)
    except ExpressionError as error:
        raise StepError("ExpressionError", f"The step's body expression: {error}") from None
    payload = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    if len(payload) > MAX_REQUEST_BYTES:
        raise StepError(
            "RequestTooLarge",
            f"The step's body is {len(payload):,} bytes; a step sends at most {MAX_REQUEST_BYTES:,}.",
        )
    return payload


MAX_RECORD_IDS = 50
# An id as systems of record write them; anything else (an e-mail address, a name, control
# characters) could be personal data or unstorable, and is left out.
_RECORD_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_LIST_KEYS = ("data", "items", "results", "records", "value")


def record_ids(body: object) -> list[str]:
    """The ids of the records a JSON response names: its own ``id``, or the ``id`` of each item
    of a list (the body itself, or under ``data``/``items``/``results``/``records``/``value``) —
    at most ``MAX_RECORD_IDS``, each 1–64 letters, digits or ``._:-``; none for anything else."""

    def of(item: object) -> str | None:
        if isinstance(item, dict):
            value = item.get("id")
            if (
                isinstance(value, str | int)
                and not isinstance(value, bool)
                and _RECORD_ID.fullmatch(str(value))
            ):
                return str(value)
        return None

    items = body
    if isinstance(body, dict):
        own = of(body)
        if own is not None:
            return [own]
        items = next((body[key] for key in _LIST_KEYS if isinstance(body.get(key), list)), None)
    if not isinstance(items, list):
        return []
    ids = (of(item) for item in items[: MAX_RECORD_IDS * 2])
    return [found for found in ids if found is not None][:MAX_RECORD_IDS]


def _body(response: OutboundResponse) -> tuple[object, bool]:
    text = response.body.decode("utf-8", errors="replace")
    truncated = len(text) > MAX_BODY_CHARS
    if "json" in (response.header("Content-Type") or "") and not truncated:
        try:
            return json.loads(text), False
        except ValueError:
            pass
    return text[:MAX_BODY_CHARS], truncated


def step_url(endpoint_url: str, path: str) -> str:
    """The URL a step calls: the integration's endpoint, then the step's path. The definition's
    schema makes every path start with ``/``, so a path can only add to the endpoint's path,
    never name another host (``/x@evil``, ``//evil`` stay paths of the endpoint's host)."""
    if not path.startswith("/"):
        raise StepError("InvalidPath", "A step's path starts with /.")
    return endpoint_url.rstrip("/") + path


def run(step: dict, context: dict, env: StepEnv) -> StepOutcome:
    integration = integration_of(env.workspace_id, step["integration"])
    if integration is None:
        raise StepError("IntegrationMissing", f"The workspace has no integration {step['integration']!r}.")
    if not integration.endpoint_url:
        raise StepError(
            "IntegrationMisconfigured", f"The integration {integration.slug!r} has no endpoint URL."
        )
    refusal = pinned_refusal(integration, env)
    if refusal:
        raise StepError("IntegrationChanged", refusal)
    method = step["method"]
    principal = acting_as(integration, "integration.read" if method in READ_METHODS else "integration.write")
    url = step_url(integration.endpoint_url, step["path"])
    headers = {"Idempotency-Key": f"{env.execution_id}:{step['id']}", "Accept": "application/json"}
    pin = env.pins.get("credential")
    if pin:
        try:
            value = credential_value_resolve(credential_id=pin["id"], version_number=pin["version"])
        except ValidationError:
            raise StepError(
                "CredentialUnavailable",
                f"Version {pin['version']} of the integration's credential, which this step started with, "
                "is no longer valid.",
            ) from None
        headers["Authorization"] = f"Bearer {value}"
    payload = _payload(step, context)
    if payload is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = client_for(integration).request(method, url, headers=headers, body=payload)
    except OutboundError as error:
        raise StepError(
            "OutboundRefused" if error.refused else "OutboundError", str(error), final=error.refused
        ) from None
    touched = {
        "kind": "accessed" if method in READ_METHODS else "written",
        "integration": integration.slug,
        "service_account": principal.label,
        "service_account_id": principal.pk,
        "method": method,
        "host": urlsplit(response.url).hostname or "",
        "status": response.status,
        "credential_version": pin["version"] if pin else None,
        "body_bytes": len(payload) if payload is not None else None,
    }
    if response.status == 429 or response.status >= 500:
        return StepOutcome.failed(
            "HttpError", f"HTTP {response.status} {response.reason} from {touched['host']}.", final=False,
            data_event=touched,
        )  # fmt: skip
    if response.status >= 400:
        return StepOutcome.failed(
            "HttpError",
            f"HTTP {response.status} {response.reason} from {touched['host']}.",
            data_event=touched,
        )
    body, truncated = _body(response)
    touched["records"] = record_ids(body)
    return StepOutcome(
        output={"status": response.status, "body": body, "truncated": truncated},
        next_step=step.get("next"),
        data_event=touched,
    )
