"""The decision record of an AI call: an ``AICall`` row (what budgets count and the timeline
shows) and the ``ai.decision`` ledger event, written by the engine with the step's outcome.

Input and output appear only as HMAC-SHA-256 under a key derived from the workspace's general data
key (the record names that key's id): equal texts can be matched across records by someone holding
the key, and nothing in the ledger reads back as personal data. A leaked canary adds
``ai.canary_leaked`` (marked for incident review); a spent budget or call cap adds
``ai.limit_reached``.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from typing import Any

from django.utils import timezone

from audit.services import audit_event_record
from governance.core.text import text_refusal
from governance.crypto.keyring import active_key
from workflows.events import WorkflowEvent
from workflows.executions.models import AICall, AICallVerdict, Execution, StepRun

_KEY_LABEL = b"ai-decision-hmac"


def _mac_key(workspace_id: int) -> tuple[bytes, int]:
    key = active_key(workspace_id, "general")
    # AES-GCM under the data key over a fixed label, as a PRF: the key never leaves the keyring.
    derived = hashlib.sha256(_KEY_LABEL + key.aead.encrypt(bytes(12), _KEY_LABEL, b"")).digest()
    return derived, key.key_id


def text_mac(workspace_id: int, text: str) -> tuple[str, int]:
    """``(hex HMAC of text, data key id)`` under the workspace's AI decision key."""
    derived, key_id = _mac_key(workspace_id)
    return hmac.new(derived, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest(), key_id


def storable(value: Any) -> Any:
    """``value`` with every string PostgreSQL and the ledger's canonical form could not hold (NUL,
    a lone surrogate) replaced by ``"[unstorable]"``, so that a decision record is always written,
    whatever a model or a guardrail put in it. Texts that become HMACs keep their exact bytes."""
    if isinstance(value, str):
        return "[unstorable]" if text_refusal(value) else value
    if isinstance(value, dict):
        return {
            (storable(key) if isinstance(key, str) else key): (
                child if key in ("input_text", "output_text") else storable(child)
            )
            for key, child in value.items()
        }
    if isinstance(value, list | tuple):
        return [storable(child) for child in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def ai_call_record(execution: Execution, run: StepRun, ai_call: dict, *, where: dict) -> AICall:
    """Write the decision record of ``ai_call`` (what the runner gave back) for ``run``."""
    call = storable(dict(ai_call))
    macs: dict = {}
    for name in ("input_text", "output_text"):
        text = call.pop(name, None)
        if text is not None:
            macs[name.replace("_text", "_hmac")], macs["hmac_key"] = text_mac(execution.workspace_id, text)
    guardrails = call.get("guardrails") or {}
    risk = guardrails.get("risk") or {}
    row = AICall.objects.create(
        workspace_id=execution.workspace_id,
        execution=execution,
        step_run=run,
        provider=call["provider"][:100],
        model=call["model"][:100],
        model_version=(call.get("model_version") or "")[:100],
        prompt_tokens=call.get("prompt_tokens") or 0,
        completion_tokens=call.get("completion_tokens") or 0,
        latency_ms=call.get("latency_ms"),
        risk_score=risk.get("score"),
        verdict=call["verdict"],
        guardrails={**guardrails, "validation": call.get("validation") or {}},
        created_at=timezone.now(),
    )
    data = {
        "execution": execution.pk,
        "workflow": execution.workflow_id,
        "version": execution.version_id,
        "step": run.step_id,
        "attempt": run.attempt,
        "call": row.pk,
        **{k: v for k, v in call.items() if k not in ("guardrails", "validation")},
        **macs,
        "guardrails": guardrails,
        "validation": call.get("validation") or {},
    }
    # The record names its own row (the backstop links the row's capture to it).
    audit_event_record(action=WorkflowEvent.AI_DECISION, actor=None, target=row, **where, data=data)
    if call["verdict"] == AICallVerdict.CANARY:
        audit_event_record(
            action=WorkflowEvent.AI_CANARY_LEAKED,
            actor=None,
            target=run,
            **where,
            data={"execution": execution.pk, "step": run.step_id, "call": row.pk, "incident_review": True},
        )
    if call.get("limit"):
        audit_event_record(
            action=WorkflowEvent.AI_LIMIT_REACHED,
            actor=None,
            target=execution,
            **where,
            data={"execution": execution.pk, "step": run.step_id, "limit": call["limit"]},
        )
    return row
