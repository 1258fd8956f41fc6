"""Start-up cost: a management command or a web process must not import what only one page uses."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# A clean environment, but where bytecode may not be written (a shared environment) it is not.
ENV = {
    "DJANGO_SETTINGS_MODULE": "governance.settings.test",
    "PATH": "/usr/bin:/bin",
    **{name: os.environ[name] for name in ("PYTHONDONTWRITEBYTECODE",) if name in os.environ},
}

# Modules that only some actions need, each a noticeable share of every command's start when it
# was imported up front (python -X importtime manage.py help, docs/benchmarks.md): the evidence
# summary's PDF, the MFA enrolment's QR code, the evidence builder, the definition schema's
# validator, the workflow graph, the Cedar policy engine, the SAML signature stack, the expression
# sandbox, the PKCS#11 provider, and Celery with its app and the task modules.
LAZY = (
    "celery",
    "kombu",
    "governance.celery",
    "governance.access.tasks",
    "reportlab",
    "qrcode",
    "audit.evidence.builder",
    "jsonschema",
    "graphviz",
    "cedarpy",
    "lxml",
    "xmlsec",
    "celpy",
    "pkcs11",
)


def test_django_setup_leaves_the_heavy_libraries_unimported():
    """GIVEN the project's settings WHEN Django starts (as every command does, admin modules
    included) THEN none of the modules that only some actions need is imported yet."""
    probe = (
        "import sys, django; django.setup(); "
        "from django.contrib import admin; admin.autodiscover(); "
        f"print(','.join(name for name in {LAZY!r} if name in sys.modules))"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments, this interpreter
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == ""


def test_a_task_module_binds_its_tasks_to_the_project_app():
    """GIVEN a process where nothing loaded Celery yet WHEN a service's task module is imported
    and its task is sent THEN the project's app sends it (the test settings run tasks eagerly),
    not a default app with a broker nobody configured."""
    probe = (
        "import sys, django; django.setup(); "
        "assert 'celery' not in sys.modules; "
        "from governance.access.tasks import notify_policy_change; "
        "from celery import current_app; "
        "print(current_app.main, notify_policy_change.app.main, current_app.conf.task_always_eager)"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments, this interpreter
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.split() == ["governance", "governance", "True"]
