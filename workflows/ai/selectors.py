# PLACEHOLDER: the register's real selectors replace this module before release.
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any


@dataclass(frozen=True)
class ModelVerdict:
    ok: bool
    reason: str
    provider: Any
    model: Any


STUB = {"blocked": set()}


def ai_model_verdict(*, workspace, provider, model, on=None):
    if model in STUB["blocked"]:
        return ModelVerdict(False, f"The model {model!r} is blocked in the register.", None, None)
    return ModelVerdict(
        True,
        "",
        SimpleNamespace(integration_slug="llm", slug=provider),
        SimpleNamespace(model_id=model, model_version="1"),
    )
