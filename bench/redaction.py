"""Cost of redacting ledger data: ``redact_data`` on typical ledger payloads, against ``json.dumps``
of the same payloads measured in the same run.

``audit_event_record`` runs ``redact_data`` on every event's data, so its common path (nothing to
redact) is what the request path pays. Measured: that path with an empty registry and with
``--known`` registered secrets; for context, a payload that does hold a credential (the full walk),
and ``redact_text`` on a log line. No database is needed.

Adversarial input: ``redact_text`` on texts that repeat a pattern's prefix (``"sk-" * 21000``,
63,000 characters, and ``"eyJaaaaa." * 8000``, 72,000), against ``json.dumps`` of the same string
in the same run, and against ``redact_text`` on about half of it. With bounded repetitions the
cost is linear in the length (doubling it about doubles the time); a regression to quadratic
scanning shows as a ratio to ``json.dumps`` about a hundred times larger (tens of thousands), and
a doubling factor near 4.

    .venv/bin/python bench/redaction.py [--calls 20000] [--repeat 7] [--known 1000]
                                        [--adversarial-calls 5]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common


def payloads() -> list[dict]:
    """Ledger data as the services write it: a row change, a workflow change with its diff, a grant."""
    row_change = common.event_values(41, datetime.now(UTC))["data"]
    change_submitted = {
        "workflow": "ops-eu-invoices",
        "version": 4,
        "content_hash": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "previous_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "change_request": "6f1ed002-ab5d-42e1-9a0c-3cfb3a1f7b1c",
        "diff": {
            "steps.classify.guardrails.max_tokens": {"before": 300, "after": 500},
            "steps.route.next": {"before": "archive", "after": "review"},
            "name": {"before": "Invoices", "after": "Invoices EU"},
        },
        "required_approvals": 2,
        "reasons": ["production", "handles personal data"],
        "submitted_at": "2026-11-29T10:15:30.123456+00:00",
    }
    membership = {
        "user": "officer@acme.test",
        "role": "compliance_officer",
        "workspace": "ops-eu",
        "via": "admin",
    }
    return [row_change, change_submitted, membership]


def per_call(function: Callable[[], object], calls: int, repeat: int) -> float:
    """Median seconds per call of ``function`` over ``repeat`` samples of ``calls`` calls."""
    for _ in range(calls // 10):
        function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(calls):
            function()
        samples.append((time.perf_counter() - started) / calls)
    return statistics.median(samples)


def compare(label: str, data: list[dict], calls: int, repeat: int) -> float:
    """Time ``redact_data`` and ``json.dumps`` over ``data`` (alternating), print both and the ratio."""
    from governance.core.redaction import redact_data

    def baseline() -> None:
        for payload in data:
            json.dumps(payload)

    def ours() -> None:
        for payload in data:
            redact_data(payload)

    dumps_time, redact_time = [], []
    for _ in range(2):  # alternate, so that drift in machine load hits both alike
        dumps_time.append(per_call(baseline, calls, repeat))
        redact_time.append(per_call(ours, calls, repeat))
    base, cost = min(dumps_time) / len(data), min(redact_time) / len(data)
    common.show(f"{label}: json.dumps (baseline)", f"{base * 1e6:.2f} µs per payload")
    common.show(f"{label}: redact_data", f"{cost * 1e6:.2f} µs per payload")
    common.show(f"{label}: ratio redact_data / json.dumps", f"{cost / base:.2f}")
    return cost / base


# (repeated unit, repetitions): "sk-" * 21000 is 63,000 characters, "eyJaaaaa." * 8000 is 72,000.
ADVERSARIAL = (("sk-", 21_000), ("eyJaaaaa.", 8_000))


def adversarial(calls: int, repeat: int) -> None:
    """``redact_text`` on each adversarial text against ``json.dumps`` of it (alternating, best of
    two alternations), and against ``redact_text`` on about half of it (the doubling factor).

    The half keeps the same number of repetitions modulo 3, so that it ends like the full text: the
    JWT pattern takes three ``eyJaaaaa.`` at a time, and a leftover one costs a second full pass."""
    from governance.core.redaction import redact_text

    for unit, count in ADVERSARIAL:
        text = unit * count
        half_count = count // 2 - (count // 2 - count) % 3
        half = unit * half_count
        redact_text(text), redact_text(half)  # warm-up
        dumps_time, redact_time, half_time = [], [], []
        for _ in range(2):
            dumps_time.append(per_call(lambda text=text: json.dumps(text), calls * 200, repeat))
            redact_time.append(per_call(lambda text=text: redact_text(text), calls, repeat))
            half_time.append(per_call(lambda half=half: redact_text(half), calls, repeat))
        base, cost, cost_half = min(dumps_time), min(redact_time), min(half_time)
        # Time for exactly twice the length, per character from the half's measurement.
        doubling = (cost / len(text)) / (cost_half / len(half)) * 2
        name = f'"{unit}" * {count} ({len(text):,} chars)'
        common.show(f"{name}: json.dumps (baseline)", f"{base * 1e6:.1f} µs")
        common.show(
            f"{name}: redact_text", f"{cost * 1e3:.2f} ms", f"{cost / len(text) * 1e9:.0f} ns per character"
        )
        common.show(f"{name}: ratio redact_text / json.dumps", f"{cost / base:,.0f}")
        common.show(
            f"{name}: doubling the length ({half_count:,} → {count:,})",
            f"{doubling:.2f}×",
            f"half: {cost_half * 1e3:.2f} ms; ≈2 linear, ≈4 quadratic",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per sample (default 20,000)")
    parser.add_argument("--repeat", type=int, default=7, help="samples per figure, median taken (default 7)")
    parser.add_argument("--known", type=int, default=1000, help="registered secrets in the second part")
    parser.add_argument(
        "--adversarial-calls", type=int, default=5, help="redact_text calls per sample on adversarial input"
    )
    args = common.parse_arguments(
        parser, smoke={"calls": 200, "repeat": 1, "known": 50, "adversarial_calls": 1}
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", common.SETTINGS_MODULE)

    from governance.core.redaction import redact_data, redact_text, registry, secret_register

    data = payloads()
    for payload in data:
        assert redact_data(payload) is payload, "a typical payload must need no redaction"
    sizes = ", ".join(str(len(json.dumps(payload))) for payload in data)
    print(f"redaction: {len(data)} typical ledger payloads ({sizes} bytes of JSON), "
          f"{args.calls:,} calls × {args.repeat} samples")  # fmt: skip

    common.title("Common path: nothing to redact, no known secrets")
    registry.clear()
    compare("empty registry", data, args.calls, args.repeat)

    common.title(f"Common path with {args.known:,} known secrets registered")
    for _ in range(args.known):
        secret_register(secrets.token_urlsafe(24))
    started = time.perf_counter()
    registry.index()
    common.show("building the index of known secrets", f"{(time.perf_counter() - started) * 1e3:.1f} ms")
    compare(f"{args.known:,} known", data, args.calls, args.repeat)

    common.title("Context (no target): payloads that do hold a credential, and a log line")
    leaked = [dict(payload, note="retrying with password=hunter2 after 401") for payload in data]
    compare("with a credential (full walk)", leaked, max(args.calls // 10, 100), args.repeat)
    line = "GET /api/workflows/ops-eu-invoices/executions/?page=2 200 in 41 ms for officer@acme.test"
    text_time = per_call(lambda: redact_text(line), args.calls, args.repeat)
    format_time = per_call(lambda: "%s %s" % ("GET", line), args.calls, args.repeat)  # noqa: UP031
    common.show("redact_text on an 88-character log line", f"{text_time * 1e6:.2f} µs")
    common.show("  ratio to %-formatting the same line", f"{text_time / format_time:.1f}")
    registry.clear()

    common.title("Adversarial input: repeated pattern prefixes (empty registry)")
    adversarial(args.adversarial_calls, args.repeat)


if __name__ == "__main__":
    main()
