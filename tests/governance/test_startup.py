"""Start-up cost: a management command or a web process must not import what only one page uses."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Heavy libraries that only one action needs: the evidence summary's PDF and the MFA enrolment's
# QR code. Each cost a noticeable share of every command's start (python -X importtime).
LAZY = ("reportlab", "qrcode")


def test_django_setup_leaves_the_heavy_libraries_unimported():
    """GIVEN the project's settings WHEN Django starts (as every command does, admin modules
    included) THEN the PDF and QR-code libraries are not imported yet."""
    probe = (
        "import sys, django; django.setup(); "
        "from django.contrib import admin; admin.autodiscover(); "
        f"print(','.join(name for name in {LAZY!r} if name in sys.modules))"
    )
    result = subprocess.run(  # noqa: S603 - fixed arguments, this interpreter
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "governance.settings.test", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == ""
