"""``POST /hooks/<workspace id><path>``: the signed webhook trigger (see ``hooks``). JSON in, JSON out.

Every answer is JSON with a plain message: 202 with the run's id; 400 for a body that is not a JSON
object; 401 for a missing, stale or forged signature; 404 when no active workflow of that
workspace listens on the path (the same answer whether or not the workspace exists); 409 for a
replayed signature; 413 over ``WEBHOOK_MAX_BYTES``; 422 when the run is refused (e.g. inactive);
423 under a halt or quarantine; 429 past ``WEBHOOK_RATE_PER_MINUTE`` per hook address. Refusals for a
known workflow are recorded in the ledger (``webhook.refused``, ``execution.refused``).
"""

from __future__ import annotations

import json
import re
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from governance.access.decision import AccessDenied
from governance.core.middleware import client_ip
from governance.core.text import json_refusal
from workflows.executions import hooks
from workflows.executions.models import Execution, TriggerKind
from workflows.executions.principals import WorkflowTriggerPrincipal
from workflows.executions.services import TriggerHaltedError, execution_trigger

_HOOK_PATH = re.compile(r"[A-Za-z0-9/_-]{1,100}")


def _answer(status: int, message: str, **extra) -> JsonResponse:
    return JsonResponse({"detail": message, **extra}, status=status)


def _over_rate(address: str) -> bool:
    """A fixed one-minute window per key, counted in the cache (Redis in production)."""
    key = f"hooks:rate:{address}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        return cache.incr(key) > settings.WEBHOOK_RATE_PER_MINUTE
    except ValueError:  # the key expired between add and incr: a new window
        return False


@csrf_exempt
@require_POST
def webhook_receive(request, workspace_id: int, hook_path: str):
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > settings.WEBHOOK_MAX_BYTES:
        return _answer(413, f"The body is {length:,} bytes; the limit is {settings.WEBHOOK_MAX_BYTES:,}.")
    client = client_ip(request) or "unknown"
    # Per caller before anything is looked up or checked: probing addresses and forging
    # signatures cost the caller its own window, not the real sender's.
    if _over_rate(f"client:{client}"):
        return _answer(429, f"More than {settings.WEBHOOK_RATE_PER_MINUTE} requests a minute: slow down.")
    # Only what a definition may name is looked up (its trigger.path pattern; a bigint id).
    valid = _HOOK_PATH.fullmatch(hook_path) and workspace_id < 2**63
    workflows = hooks.workflows_for_hook(workspace_id=workspace_id, path="/" + hook_path) if valid else []
    if not workflows:
        return _answer(404, "No active workflow listens on this address.")
    body = request.body
    if len(body) > settings.WEBHOOK_MAX_BYTES:  # a body longer than its Content-Length said
        return _answer(413, f"The body is larger than {settings.WEBHOOK_MAX_BYTES:,} bytes.")
    address = client
    try:
        workflow = hooks.webhook_verify(
            workflows=workflows,
            timestamp=request.headers.get("X-Portal-Timestamp", ""),
            signature=request.headers.get("X-Portal-Signature", ""),
            body=body,
        )
    except hooks.HookRefused as refusal:
        for candidate in workflows:
            hooks.webhook_refusal_record(workflow=candidate, reason=refusal.reason, address=address)
        return _answer(refusal.status, refusal.message)
    if _over_rate(f"workflow:{workflow.pk}"):  # signed requests, per workflow
        return _answer(429, f"More than {settings.WEBHOOK_RATE_PER_MINUTE} requests a minute: slow down.")
    key = "webhook:" + request.headers["X-Portal-Signature"].removeprefix("sha256=")
    # A signature is accepted once, whatever came of it (a run, or a refusal under a halt).
    first_time = cache.add(f"hooks:seen:{key}", 1, timeout=2 * settings.WEBHOOK_TOLERANCE_SECONDS + 60)
    if not first_time or Execution.objects.filter(workflow=workflow, idempotency_key=key).exists():
        hooks.webhook_refusal_record(workflow=workflow, reason="replayed", address=address)
        return _answer(409, "This signed request was received before; sign each request anew.")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError, or an integer too long
        hooks.webhook_refusal_record(workflow=workflow, reason="not JSON", address=address)
        return _answer(400, "The body must be a JSON object (UTF-8).")
    if not isinstance(payload, dict) or json_refusal(payload):
        hooks.webhook_refusal_record(workflow=workflow, reason="not a storable JSON object", address=address)
        return _answer(400, "The body must be a JSON object that can be stored as it is.")
    try:
        execution = execution_trigger(
            actor=WorkflowTriggerPrincipal.of(workflow, "webhook"),
            workflow=workflow,
            input=payload,
            idempotency_key=key,
            kind=TriggerKind.WEBHOOK,
        )
    except TriggerHaltedError:  # the halt's details stay inside (recorded as execution.refused)
        return _answer(423, "This workflow does not accept runs now: it is halted or quarantined.")
    except (ValidationError, AccessDenied) as refusal:
        messages = (
            refusal.message_dict
            if isinstance(refusal, ValidationError) and hasattr(refusal, "error_dict")
            else None
        )
        return _answer(422, "The run was refused.", errors=messages or {"detail": [str(refusal)]})
    return _answer(202, "Accepted: the run is queued.", execution=execution.pk)
