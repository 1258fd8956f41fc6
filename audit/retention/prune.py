"""Archive-then-prune: the job that deletes old ledger content while every proof stays valid.

1. **Plan** — a prefix of the ledger up to the latest signed tree head (and no further than
   every SIEM sink has acknowledged, so nothing is pruned before it was exported); in it, the
   events past their scope's retention (``audit.retention.policy``) and under no legal hold.
   With ``before`` (an explicit request) the plan is refused, with the reason, when ``before``
   lies past a chosen scope's retention boundary or when a hold covers an event it would take.
2. **Archive** — the chosen events written to a signed archive (``audit.retention.archive``) and
   verified from the file before anything is deleted.
3. **Record** — ``retention.pruned`` in the ledger (the archive's id and digest, the head, the
   counts), sealed at once: the database lets a run delete only once this record is sealed.
4. **Prune** — in batches, through ``audit_prune`` on PostgreSQL: each event's leaf hash and chain
   hash are kept (``PrunedLeaf``), its row and its captured row changes deleted. Holds are
   checked again per batch: an event a hold placed meanwhile covers is kept.

Runs one at a time (an advisory lock); an interrupted run resumes at its phase: the archive is
rewritten whole, the prune continues from the events not yet pruned.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from audit.canonical import format_time
from audit.events import RetentionEvent
from audit.models import (
    AuditEvent,
    LedgerArchive,
    LedgerArchiveState,
    LegalHold,
    PrunedLeaf,
    RetentionPolicy,
    SignedTreeHead,
)
from audit.retention.archive import ArchiveError, archive_check, archive_events, archive_write
from audit.retention.policy import (
    HARD_FLOOR_MONTHS,
    months_before,
    organization_retentions,
    platform_retention,
    policy_retention,
)
from audit.retention.services import active_holds, held_filter, hold_filter
from audit.sealing import ledger_seal_all
from audit.services import audit_event_record
from audit.siem.models import Sink, SinkStatus
from audit.signing import load_signing_key
from governance.core.locks import LockClass, advisory_lock
from governance.tenancy.models import Organization, Workspace

logger = logging.getLogger(__name__)

BATCH = 5_000
Progress = Callable[[str, int, int], None]


class PruneRefusedError(ValueError):
    """The prune cannot be done as asked; the message says why (a boundary, a hold, the ledger)."""


@dataclass
class ScopeLine:
    """One scope of a plan: its events before ``cutoff`` are taken (``held`` of them are kept)."""

    label: str
    retention: str
    cutoff: datetime
    key: dict[str, int]  # {"workspace": pk}, {"organization": pk}, or {} for the platform's own
    filter: Q = field(repr=False)
    chosen: int = 0
    held: int = 0


@dataclass
class PrunePlan:
    head: SignedTreeHead
    bound: int
    bound_reason: str
    scopes: list[ScopeLine]
    holds: list[LegalHold]
    before: datetime | None

    @property
    def total(self) -> int:
        return sum(line.chosen for line in self.scopes)

    def criteria(self) -> dict[str, Any]:
        return {
            "before": format_time(self.before) if self.before else None,
            "bound": self.bound,
            "bound_reason": self.bound_reason,
            "scopes": [
                {
                    "scope": line.label,
                    **line.key,
                    "cutoff": format_time(line.cutoff),
                    "retention": line.retention,
                }
                for line in self.scopes
            ],
            "holds": [str(hold.uid) for hold in self.holds],
        }


def _bound(head: SignedTreeHead) -> tuple[int, str]:
    """How far the prefix may reach: the head, and no further than any live sink's cursor (a sink
    whose pump has not run yet has acknowledged nothing)."""
    low = (
        Sink.objects.exclude(status=SinkStatus.DISABLED)
        .annotate(position=Coalesce("cursor__position", 0))
        .aggregate(low=Min("position"))["low"]
    )
    if low is not None and low < head.tree_size:
        return low, f"the SIEM sinks have acknowledged events up to {low}"
    return head.tree_size, f"signed tree head #{head.number}"


def prune_plan(
    *,
    before: datetime | None = None,
    workspace: Workspace | None = None,
    organization: Organization | None = None,
    now: datetime | None = None,
) -> PrunePlan:
    """What a prune would take: per scope, the events past retention (or before ``before``)."""
    now = now or timezone.now()
    head = SignedTreeHead.objects.order_by("-number").first()
    if head is None:
        raise PruneRefusedError("The ledger has no signed tree head yet: nothing can be pruned.")
    bound, bound_reason = _bound(head)
    if workspace is not None:
        workspaces = [workspace]
        organizations = []
    elif organization is not None:
        workspaces = list(
            Workspace.objects.filter(organization=organization).select_related("organization").order_by("pk")
        )
        organizations = [organization]
    else:
        workspaces = list(Workspace.objects.select_related("organization").order_by("pk"))
        organizations = list(Organization.objects.order_by("pk"))
    policies = {
        p.workspace_id: p for p in RetentionPolicy.objects.filter(workspace__in=[ws.pk for ws in workspaces])
    }
    org_retention = organization_retentions([org.pk for org in organizations])
    lines: list[ScopeLine] = []
    for ws in workspaces:
        retention = policy_retention(policies.get(ws.pk))
        lines.append(
            ScopeLine(
                f"workspace {ws.organization.slug}/{ws.slug}",
                retention.describe(),
                retention.cutoff(now),
                {"workspace": ws.pk},
                _scope_filter({"workspace": ws.pk}),
            )
        )
    for org in organizations:
        retention = org_retention[org.pk]
        lines.append(
            ScopeLine(
                f"organisation {org.slug} (its own events)",
                retention.describe(),
                retention.cutoff(now),
                {"organization": org.pk},
                _scope_filter({"organization": org.pk}),
            )
        )
    if workspace is None and organization is None:
        retention = platform_retention()
        lines.append(
            ScopeLine(
                "the platform's own events",
                retention.describe(),
                retention.cutoff(now),
                {},
                _scope_filter({}),
            )
        )
    if before is not None:
        too_late = [line for line in lines if before > line.cutoff]
        if too_late:
            raise PruneRefusedError(
                "Refused: "
                + "; ".join(
                    f"{line.label} keeps its events {line.retention}, so the earliest it allows is before "
                    f"{format_time(line.cutoff)}"
                    for line in too_late[:5]
                )
                + (f" (and {len(too_late) - 5} more scopes)" if len(too_late) > 5 else "")
                + "."
            )
    for line in lines:
        line.filter &= Q(occurred_at__lt=before or line.cutoff)
    holds = active_holds()
    plan = PrunePlan(
        head=head, bound=bound, bound_reason=bound_reason, scopes=lines, holds=holds, before=before
    )
    held = held_filter(holds)
    for line in lines:
        scope_events = AuditEvent.objects.filter(line.filter, sequence__isnull=False, sequence__lte=bound)
        line.chosen = scope_events.count()
        if held is not None and line.chosen:
            line.held = scope_events.filter(held).count()
            line.chosen -= line.held
    if before is not None:
        blocking = [
            hold
            for hold in holds
            if any(
                line.held
                and AuditEvent.objects.filter(line.filter, hold_filter(hold), sequence__lte=bound).exists()
                for line in lines
            )
        ]
        if blocking:
            raise PruneRefusedError(
                "Refused: legal hold(s) cover events of this range: "
                + "; ".join(
                    f"{hold.uid} ({hold.scope_label}, owner {hold.owner}): {hold.reason}" for hold in blocking
                )
                + ". Release the hold or choose a range it does not cover."
            )
    return plan


def archive_path(run: LedgerArchive) -> Path:
    directory = Path(settings.LEDGER_ARCHIVE_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / f"ledger-archive-{run.uid}.zip"


def unfinished_run() -> LedgerArchive | None:
    return LedgerArchive.objects.exclude(
        state__in=(LedgerArchiveState.DONE, LedgerArchiveState.FAILED)
    ).first()


def prune_start(*, plan: PrunePlan, requested_by: str) -> LedgerArchive:
    """Record a run for ``plan`` (refused while another run is unfinished)."""
    if plan.total == 0:
        raise PruneRefusedError("Nothing to prune: no event is past its retention and free of holds.")
    with transaction.atomic():
        if unfinished_run() is not None:
            raise PruneRefusedError(
                "Another prune run is unfinished: resume it first (ledger_prune --resume)."
            )
        run = LedgerArchive.objects.create(
            requested_by=requested_by[:254],
            head_number=plan.head.number,
            tree_size=plan.bound,
            criteria=plan.criteria(),
            events_total=plan.total,
        )
        audit_event_record(
            action=RetentionEvent.ARCHIVE_STARTED,
            actor=None,
            target=run,
            data={"archive": str(run.uid), "requested_by": run.requested_by, **run.criteria},
        )
    return run


def chosen_events(criteria: dict[str, Any], tree_size: int):
    """The events a run's criteria choose (cutoffs are absolute times, scopes ids), minus those
    the holds in force now cover (a hold placed since the plan keeps its events out)."""
    chosen = Q(pk__in=[])
    for scope in criteria["scopes"]:
        before = datetime.fromisoformat((criteria["before"] or scope["cutoff"]).replace("Z", "+00:00"))
        chosen |= _scope_filter(scope) & Q(occurred_at__lt=before)
    selected = AuditEvent.objects.filter(chosen, sequence__isnull=False, sequence__lte=tree_size)
    held = held_filter(active_holds())
    return selected.exclude(held) if held is not None else selected


def _chosen_rows(run: LedgerArchive):
    rows = (
        chosen_events(run.criteria, run.tree_size).order_by("sequence").values_list("sequence", "canonical")
    )
    return rows.iterator(chunk_size=2_000)


def _scope_filter(key: dict) -> Q:
    """The events of a scope, by its key (ids, never names: slugs repeat across organisations)."""
    if key.get("workspace") is not None:
        return Q(workspace_id=int(key["workspace"]))
    if key.get("organization") is not None:
        return Q(organization_id=int(key["organization"]), workspace_id__isnull=True)
    return Q(organization_id__isnull=True, workspace_id__isnull=True)


def prune_resume(*, run: LedgerArchive, progress: Progress | None = None) -> LedgerArchive:
    """Carry ``run`` through its remaining phases (archive, record, prune); resumable anywhere."""
    with advisory_lock(LockClass.LEDGER_PRUNE, 1) as taken:
        if not taken:
            raise PruneRefusedError("Another process is running this prune now; wait for it to finish.")
        run.refresh_from_db()
        try:
            if run.state in (LedgerArchiveState.PLANNED, LedgerArchiveState.ARCHIVING):
                _archive(run, progress)
            if run.state == LedgerArchiveState.PRUNING:
                _prune(run, progress)
        except (ArchiveError, OSError) as error:
            _fail(run, str(error))
            raise PruneRefusedError(f"The archive could not be written or checked: {error}") from error
    return run


def _archive(run: LedgerArchive, progress: Progress | None) -> None:
    LedgerArchive.objects.filter(pk=run.pk).update(state=LedgerArchiveState.ARCHIVING)
    head = SignedTreeHead.objects.get(number=run.head_number)
    latest = SignedTreeHead.objects.order_by("-number").first()
    key = load_signing_key()
    path = archive_path(run)
    written = archive_write(
        path=path,
        run_uid=str(run.uid),
        head=head,
        latest=latest,
        rows=_chosen_rows(run),
        key=key,
        description=run.criteria,
        progress=(lambda phase, done: progress(phase, done, run.events_total)) if progress else None,
    )
    archive_check(path, key.public_key())
    with transaction.atomic():
        run.state = LedgerArchiveState.PRUNING
        run.events_total = written.events
        run.first_sequence, run.last_sequence = written.first_sequence, written.last_sequence
        run.file_name, run.file_size = path.name, written.size
        run.file_sha256, run.manifest_sha256 = written.file_sha256, written.manifest_sha256
        run.save()
        audit_event_record(
            action=RetentionEvent.PRUNED,
            actor=None,
            target=run,
            data={
                "archive": str(run.uid),
                "file_sha256": run.file_sha256,
                "manifest_sha256": run.manifest_sha256,
                "tree_head": run.head_number,
                "tree_size": run.tree_size,
                "events": run.events_total,
                "first_sequence": run.first_sequence,
                "last_sequence": run.last_sequence,
            },
        )
    ledger_seal_all()  # the database lets the run delete only once this record is sealed


def _prune(run: LedgerArchive, progress: Progress | None) -> None:
    path = archive_path(run)
    if _file_sha256(path) != run.file_sha256:
        raise ArchiveError(f"{path} is not the archive this run recorded (its digest differs).")
    holds = active_holds()
    held = held_filter(holds)
    done = PrunedLeaf.objects.filter(archive=run).count()
    kept = 0
    batch: list[int] = []

    def flush() -> None:
        nonlocal done, kept
        sequences = batch
        if held is not None:
            still_held = set(
                AuditEvent.objects.filter(held, sequence__in=sequences).values_list("sequence", flat=True)
            )
            kept += len(still_held)
            sequences = [sequence for sequence in sequences if sequence not in still_held]
        done += _prune_batch(run, sequences)
        LedgerArchive.objects.filter(pk=run.pk).update(events_pruned=done, events_kept=kept)
        if progress is not None:
            progress("pruning", done, run.events_total)

    for sequence, _ in archive_events(path):
        batch.append(sequence)
        if len(batch) >= BATCH:
            flush()
            batch = []
    if batch:
        flush()
    with transaction.atomic():
        run.refresh_from_db()
        run.state = LedgerArchiveState.DONE
        run.finished_at = timezone.now()
        run.save(update_fields=["state", "finished_at"])
        audit_event_record(
            action=RetentionEvent.PRUNE_COMPLETED,
            actor=None,
            target=run,
            data={"archive": str(run.uid), "pruned": run.events_pruned, "kept_under_hold": run.events_kept},
        )


def _prune_batch(run: LedgerArchive, sequences: list[int]) -> int:
    """Delete these events' content, keeping their leaves; return how many were pruned."""
    if not sequences:
        return 0
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT audit_prune(%s, %s::bigint[])", [run.pk, sequences])
                return cursor.fetchone()[0]
        # SQLite (the quick start): the same steps; the delete trigger checks the kept leaf.
        floor = months_before(timezone.now(), HARD_FLOOR_MONTHS)
        rows = list(
            AuditEvent.objects.filter(
                sequence__in=sequences, sequence__lte=run.tree_size, occurred_at__lt=floor
            ).values_list("pk", "sequence", "leaf_hash", "chain_hash")
        )
        PrunedLeaf.objects.bulk_create(
            PrunedLeaf(sequence=sequence, leaf_hash=leaf, chain_hash=chain, archive=run)
            for _, sequence, leaf, chain in rows
        )
        AuditEvent.objects.filter(pk__in=[pk for pk, *_ in rows])._raw_delete(connection.alias)
        return len(rows)


def _fail(run: LedgerArchive, message: str) -> None:
    with transaction.atomic():
        LedgerArchive.objects.filter(pk=run.pk).update(state=LedgerArchiveState.FAILED, error=message[:2000])
        audit_event_record(
            action=RetentionEvent.PRUNE_FAILED,
            actor=None,
            target=run,
            data={"archive": str(run.uid), "error": message[:500]},
        )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
