"""The service accounts' posture panel: dormant and rotation-due accounts."""

from __future__ import annotations

from governance.core.posture import PosturePanel, register_panel
from workflows.service_accounts.selectors import service_account_posture


def register() -> None:
    """Register the panel (called from the app's ``admin.py``)."""
    register_panel(
        PosturePanel("service_accounts", 40, "admin/posture/service_accounts.html", service_account_posture)
    )
