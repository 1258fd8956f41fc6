"""The event codes the ledger accepts, and the registry through which each app declares its own.

An app owns its codes as an ``EventCode`` enum (``workflows.events.WorkflowEvent`` …) and registers
it in its ``AppConfig.ready``; services pass the members, never free strings. A code nobody
registered is refused at the service boundary (``audit.services.audit_event_record``)."""

from __future__ import annotations

from enum import StrEnum

from django.db import models


class Category(models.TextChoices):
    ADMIN = "admin", "Administration"
    WORKFLOW_LIFECYCLE = "workflow_lifecycle", "Workflow lifecycle"
    EXECUTION = "execution", "Execution"
    AUTHENTICATION = "authentication", "Authentication"
    ACCESS = "access", "Access"
    SYSTEM = "system", "System"


class EventCode(StrEnum):
    """Base of an app's event codes: each member is its code (a string) and carries its category.

    ``CREATED = "workflow.created", Category.WORKFLOW_LIFECYCLE``
    """

    category: Category

    def __new__(cls, code: str, category: Category):
        member = str.__new__(cls, code)
        member._value_ = code
        member.category = Category(category)
        return member


_categories: dict[str, Category] = {}


def register_event_codes(*enums: type[EventCode]) -> None:
    """Make the codes of ``enums`` known to the ledger; a code registered twice under another
    category is a bug."""
    for enum in enums:
        for member in enum:
            existing = _categories.get(member.value)
            if existing is not None and existing != member.category:
                raise ValueError(f"event code {member.value!r} is already registered as {existing}")
            _categories[member.value] = member.category


def category_of(code: str) -> Category | None:
    """Return the category of a registered event code, or None."""
    return _categories.get(str(code))


def known_codes() -> frozenset[str]:
    """Every registered event code."""
    return frozenset(_categories)


class LedgerEvent(EventCode):
    """The ledger's own events: refused sensitive actions, captured raw writes, verification runs."""

    ACCESS_DENIED = "access.denied", Category.ACCESS
    DB_ROW_CHANGED = "db.row_changed", Category.SYSTEM
    LEDGER_VERIFIED = "ledger.verified", Category.SYSTEM


class EvidenceEvent(EventCode):
    """Evidence packages: orders, builds, downloads (docs/evidence.md)."""

    # Evidence packages (see docs/evidence.md).
    EVIDENCE_PACKAGE_BUILT = "evidence.package_built", Category.ACCESS
    EVIDENCE_ORDERED = "evidence.ordered", Category.ACCESS
    EVIDENCE_ORDER_STARTED = "evidence.order_started", Category.SYSTEM
    EVIDENCE_ORDER_READY = "evidence.order_ready", Category.SYSTEM
    EVIDENCE_ORDER_FAILED = "evidence.order_failed", Category.SYSTEM
    EVIDENCE_ORDER_EXPIRED = "evidence.order_expired", Category.SYSTEM
    EVIDENCE_DOWNLOADED = "evidence.downloaded", Category.ACCESS
    EVIDENCE_DOWNLOAD_DENIED = "evidence.download_denied", Category.ACCESS


class RetentionEvent(EventCode):
    """Retention: policies, legal holds, archive-then-prune runs (docs/retention.md)."""

    POLICY_CHANGED = "retention.policy_changed", Category.ADMIN
    HOLD_PLACED = "legal_hold.placed", Category.ADMIN
    HOLD_RELEASED = "legal_hold.released", Category.ADMIN
    ARCHIVE_STARTED = "retention.archive_started", Category.SYSTEM
    PRUNED = "retention.pruned", Category.SYSTEM
    PRUNE_COMPLETED = "retention.prune_completed", Category.SYSTEM
    PRUNE_FAILED = "retention.prune_failed", Category.SYSTEM
