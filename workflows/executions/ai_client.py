"""Calls to a model's OpenAI-compatible chat API, with the ``openai`` client, through the network
boundary: the client's HTTP transport is the integration's outbound client (allow-list, verified
TLS 1.2+, SPKI pins, caps), never a socket of its own.

The client does not retry (``max_retries=0``): the engine owns retries, so a 429 or a 5xx becomes a
retryable failure of the step and every attempt is its own record. A refusal by the boundary and
any other 4xx are final.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx2 as httpx  # the HTTP library of the openai client (httpx2 since openai 3)
import openai
from openai.types.chat import ChatCompletion

from governance.core.outbound.client import OutboundClient, OutboundError

# Headers the outbound client sets itself, or that would make the body something it does not read.
_DROPPED_REQUEST = frozenset({"host", "content-length", "connection", "accept-encoding", "transfer-encoding"})
_DROPPED_RESPONSE = frozenset({"content-encoding", "transfer-encoding", "content-length", "connection"})


def _label(value: object) -> str:
    """A short name the provider reports (its model, a finish reason), as printable ASCII of at
    most 100 characters: whatever the endpoint sends, the record can store it."""
    text = value if isinstance(value, str) else ""
    return "".join(char if " " <= char <= "~" else "?" for char in text[:100])


class _Refused(httpx.TransportError):
    """The boundary refused the call (recorded by the outbound client)."""


class BoundaryTransport(httpx.BaseTransport):
    """An ``httpx2`` transport that sends every request through an ``OutboundClient``."""

    def __init__(self, client: OutboundClient) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_REQUEST}
        headers["Accept-Encoding"] = "identity"
        body = request.read() or None
        try:
            response = self._client.request(request.method, str(request.url), headers=headers, body=body)
        except OutboundError as error:
            if error.refused:
                raise _Refused(str(error), request=request) from None
            if "did not answer in time" in str(error):
                raise httpx.ReadTimeout(str(error), request=request) from None
            raise httpx.ConnectError(str(error), request=request) from None
        kept = [(k, v) for k, v in response.headers if k.lower() not in _DROPPED_RESPONSE]
        return httpx.Response(response.status, headers=kept, content=response.body, request=request)


class ModelCallError(Exception):
    """A call that did not give an answer: ``final`` when trying again cannot help."""

    def __init__(self, error_class: str, message: str, *, final: bool, status: int | None = None) -> None:
        super().__init__(message)
        self.error_class, self.message, self.final, self.status = error_class, message, final, status


@dataclass(frozen=True)
class ModelAnswer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: int
    model_reported: str
    finish_reason: str


def chat(
    client: OutboundClient,
    *,
    base_url: str,
    api_key: str,
    model: str,
    messages: list[dict],
    max_tokens: int,
    timeout: float,
    json_output: bool = True,
) -> ModelAnswer:
    """One chat completion; raises ``ModelCallError`` with a message that names no secret."""
    client.timeout = timeout  # the whole exchange, redirects included, within the call's time
    api = openai.OpenAI(
        api_key=api_key or "none",
        base_url=base_url,
        max_retries=0,
        timeout=timeout,
        http_client=httpx.Client(transport=BoundaryTransport(client), timeout=timeout),
    )
    options = {"response_format": {"type": "json_object"}} if json_output else {}
    started = time.monotonic()
    try:
        completion = api.chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, temperature=0, **options
        )
    except openai.APITimeoutError:
        raise ModelCallError("ModelTimeout", "The model did not answer in time.", final=False) from None
    except openai.APIConnectionError as error:
        cause = error.__cause__
        if isinstance(cause, _Refused):
            raise ModelCallError("OutboundRefused", str(cause), final=True) from None
        raise ModelCallError("ModelUnreachable", str(cause or error)[:500], final=False) from None
    except openai.APIStatusError as error:
        status = error.status_code
        retry = status == 429 or status >= 500
        raise ModelCallError(
            "ModelRateLimited" if status == 429 else "ModelHttpError",
            f"The model's API answered HTTP {status}.",
            final=not retry,
            status=status,
        ) from None
    except openai.OpenAIError as error:  # a body the client could not read as a completion
        raise ModelCallError(
            "ModelBadAnswer", f"The model's API answered oddly ({type(error).__name__}).", final=True
        ) from None
    finally:
        api.close()
    latency_ms = int((time.monotonic() - started) * 1000)
    choices = completion.choices if isinstance(completion, ChatCompletion) else None
    if not choices or choices[0].message is None:
        raise ModelCallError("ModelBadAnswer", "The model's answer holds no message.", final=True)
    usage = completion.usage
    return ModelAnswer(
        text=choices[0].message.content or "",
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        latency_ms=latency_ms,
        model_reported=_label(getattr(completion, "model", "")),
        finish_reason=_label(choices[0].finish_reason),
    )
