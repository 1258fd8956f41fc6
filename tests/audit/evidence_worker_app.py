"""The Celery app of the worker processes started by ``test_evidence_worker``.

It is the portal's own app and tasks, on the test settings and database the test passes in the
environment, with a short visibility timeout so that the message of a killed worker is delivered
again within seconds (production keeps the default hour, see docs/evidence.md). With
``EVIDENCE_TEST_HOLD_PHASE`` set, the build stops for good once it has recorded that phase, so
that the test can kill the worker in the middle of a build without racing it.
"""

from __future__ import annotations

import os
import threading

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
django.setup()

from audit.evidence import orders  # noqa: E402
from governance.celery import app  # noqa: E402

app.conf.update(
    task_always_eager=False,
    result_backend=None,
    broker_transport_options={
        "visibility_timeout": 1,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    },
)

_hold_phase = os.environ.get("EVIDENCE_TEST_HOLD_PHASE")
if _hold_phase:
    _record_progress = orders.evidence_order_progress

    def _progress_then_hold(**kwargs) -> None:
        _record_progress(**kwargs)
        if kwargs["phase"] == _hold_phase:
            threading.Event().wait()  # until the test kills this process

    orders.evidence_order_progress = _progress_then_hold
