"""Codes of the eight roles. What each may do is data (``RolePermission``), not code."""

from __future__ import annotations

PLATFORM_ADMIN = "platform_admin"
WORKSPACE_OWNER = "workspace_owner"
WORKFLOW_BUILDER = "workflow_builder"
WORKFLOW_OPERATOR = "workflow_operator"
VIEWER = "viewer"
COMPLIANCE_OFFICER = "compliance_officer"
AUDITOR = "auditor"
ORGANIZATION_AUDITOR = "organization_auditor"

ALL_ROLES = (
    PLATFORM_ADMIN,
    WORKSPACE_OWNER,
    WORKFLOW_BUILDER,
    WORKFLOW_OPERATOR,
    VIEWER,
    COMPLIANCE_OFFICER,
    AUDITOR,
    ORGANIZATION_AUDITOR,
)
