"""The ledger in the control panel: server time and SQL queries of the event changelist at 1M events.

Setup (not measured): one organisation with 10 workspaces and 6 users who act in them; N events
(default 1,000,000) written with the COPY generator of ``common.py``, over the last 120 days, with
a mix of actions, categories and outcomes, and data shaped like the services' (``{"diff": ...}``,
denial reasons, row changes). The canonical bytes are made with ``common.fast_canonical_bytes``
(``json.dumps``; identical for these documents, checked against the project's ``canonical_bytes``
on every 50th event), which keeps the generation of 1M events to about 40 s. Authentication events belong to the organisation only (no
workspace); every other event belongs to one of the 10 workspaces. The events are left unsealed
unless ``--seal`` is given: the changelist reads the same rows either way (it shows "pending"
instead of the sequence number). An auditor holds the ``auditor`` role in ONE workspace, so the
changelist shows them that workspace's events only.

Measured: Django's test ``Client``, logged in as the auditor, against the changelist
(``admin:audit_auditevent_changelist``). For each view: one untimed request, then the median of
``--repeat`` requests timed with ``time.perf_counter`` around ``client.get`` (the whole server
side: middleware, access decisions, SQL, template), then one more request under
``CaptureQueriesContext`` for the number of SQL queries. Views: page 1; a deep page reached with
the keyset cursor (``?before=<id>``, an id halfway down the auditor's events); three filters
(action, outcome, a one-day time range in the middle of the 120 days); a full-text search for a
word a modest number of events contain; page 1 at ``list_per_page`` 20 and 100.

Targets: < 200 ms per view, <= 10 queries per view, the same number of queries at 20 and at 100
rows, deep page <= 2x page 1. ``--explain`` prints EXPLAIN (ANALYZE, BUFFERS) of every query on
the event table, for every view. Last, a what-if without verdicts (skip it with ``--no-what-if``):
the same views with ``SET jit = off`` on the benchmark's own connection, to show what PostgreSQL's
JIT compilation of the capped count costs.

    .venv/bin/python bench/ledger_admin.py [--events 1000000] [--repeat 7] [--seal] [--reuse] [--explain] [--no-what-if]
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

TARGET_MS = 200.0
TARGET_QUERIES = 10
TARGET_DEEP_RATIO = 2.0
DAYS = 120  # the generated events cover the last DAYS days
WORKSPACES = 10
AUDITED_WORKSPACE = 3  # 0-based: the auditor's workspace among the WORKSPACES
ORGANIZATION_SLUG = "bench-ledger-admin"
AUDITOR_EMAIL = "auditor@ledger-admin.bench"
ACTORS = ("alice", "bruno", "chen", "dara", "emil", "farah")
SEARCH_WORD = "payroll"  # in the new name of 1 in 100 workspace renames: ~0.1 % of all events
SEARCH_SHARE = 0.01
RENAMES = ("Operations", "Finance", "Logistics", "Research", "Support", "Billing", "Sales", "Platform")

# (action, outcome, weight): weights are shares of all events, in percent.
MIX = (
    ("login.succeeded", "success", 22.0),
    ("auth.logout", "success", 12.0),
    ("login.failed", "failed", 2.0),
    ("workspace.updated", "success", 10.0),
    ("membership.created", "success", 3.0),
    ("membership.role_changed", "success", 4.0),
    ("membership.removed", "success", 1.0),
    ("grant.assigned", "success", 2.0),
    ("grant.revoked", "success", 1.0),
    ("user.updated", "success", 5.0),
    ("access.denied", "denied", 1.5),
    ("db.row_changed", "success", 30.0),
    ("policy.change_proposed", "success", 1.0),
    ("policy.change_approved", "success", 0.5),
    ("oncall.activated", "success", 1.0),
    ("oncall.ended", "success", 1.0),
    ("api_token.created", "success", 3.0),
)
ROLES = ("viewer", "workflow_builder", "workflow_operator", "workspace_owner", "auditor")


@dataclass(frozen=True)
class Plan:
    """What the generated events refer to: the organisation, its workspaces and users (picklable)."""

    organization_id: int
    workspaces: tuple[tuple[int, str], ...]  # (id, name)
    actors: tuple[tuple[int, str], ...]  # (id, e-mail)


def _pick_action(rng: random.Random) -> tuple[str, str]:
    point = rng.random() * sum(weight for _, _, weight in MIX)
    for action, outcome, weight in MIX:
        point -= weight
        if point < 0:
            return action, outcome
    return MIX[-1][0], MIX[-1][1]


def admin_event_values(plan: Plan, index: int, occurred_at: datetime) -> dict:
    """Column values of the ``index``-th event: a realistic mix over the plan's workspaces and users."""
    from audit.events import category_of

    rng = random.Random(index)
    action, outcome = _pick_action(rng)
    workspace_id, workspace_name = plan.workspaces[index % len(plan.workspaces)]
    actor_id, actor_email = plan.actors[rng.randrange(len(plan.actors))]
    other_id, other_email = plan.actors[rng.randrange(len(plan.actors))]
    system = action == "db.row_changed"
    target_type, target_id, target_label, data = "", "", "", {}
    if action.startswith("auth."):
        workspace_id = None
        target_type, target_id, target_label = "accounts.user", str(actor_id), actor_email
        data = {"method": rng.choice(("password", "password+totp", "sso"))}
    elif action == "workspace.updated":
        before, after = rng.choice(RENAMES), rng.choice(RENAMES)
        if rng.random() < SEARCH_SHARE:
            after = f"{after} {SEARCH_WORD.capitalize()}"
        target_type, target_id, target_label = "tenancy.workspace", str(workspace_id), workspace_name
        data = {
            "diff": {"name": {"before": f"{workspace_name} {before}", "after": f"{workspace_name} {after}"}}
        }
    elif action.startswith("membership."):
        target_type, target_id, target_label = (
            "tenancy.membership",
            str(index),
            f"{other_email} in {workspace_name}",
        )
        role, new_role = rng.choice(ROLES), rng.choice(ROLES)
        if action == "membership.role_changed":
            data = {"diff": {"role": {"before": role, "after": new_role}}, "user": other_email}
        else:
            data = {"role": role, "user": other_email}
    elif action.startswith("grant."):
        target_type, target_id, target_label = (
            "workflows.workflow",
            str(index % 5000),
            f"Workflow {index % 5000}",
        )
        data = {"permission": rng.choice(("view_workflow", "change_workflow")), "user": other_email}
    elif action == "user.updated":
        target_type, target_id, target_label = "accounts.user", str(other_id), other_email
        data = {"diff": {"department": {"before": "Ops", "after": rng.choice(("Finance", "Ops", "IT"))}}}
    elif action == "access.denied":
        target_type, target_id, target_label = (
            "workflows.workflow",
            str(index % 5000),
            f"Workflow {index % 5000}",
        )
        data = {"action": "workflow.edit", "reasons": ["no role grants workflow.edit here"], "policies": []}
    elif system:
        target_type, target_id, target_label = "tenancy.membership", str(index % 20000), "tenancy_membership"
        data = {"table": "tenancy_membership", "operation": "UPDATE", "row_id": str(index % 20000),
                "db_user": "portal", "diff": {"role_id": {"before": "viewer", "after": "workflow_builder"}}}  # fmt: skip
    elif action.startswith("policy."):
        target_type, target_id, target_label = "access.policychange", str(index), f"change {index}"
        data = {"name": "production-business-hours", "reason": "quarterly review"}
    elif action.startswith("oncall."):
        target_type, target_id, target_label = "access.oncalloverride", str(index), f"on-call {actor_email}"
        data = {"reason": "incident", "minutes": 60}
    else:  # api_token.created
        target_type, target_id, target_label = "accounts.apitoken", str(index), f"token of {actor_email}"
        data = {"scopes": ["read"]}
    return {
        "uid": uuid.UUID(int=rng.getrandbits(128), version=4),
        "occurred_at": occurred_at,
        "category": str(category_of(action)),
        "action": action,
        "outcome": outcome,
        "actor_type": "system" if system else "user",
        "actor_id": None if system else actor_id,
        "actor_label": "system" if system else actor_email,
        "organization_id": plan.organization_id,
        "workspace_id": workspace_id,
        "target_type": target_type,
        "target_id": target_id,
        "target_label": target_label,
        "request_id": "" if system else f"{rng.getrandbits(128):032x}",
        "ip": None if system else f"10.{index % 7}.{index // 250 % 250}.{index % 250 + 1}",
        "user_agent": "" if system else "Mozilla/5.0 (X11; Linux x86_64) Firefox/132.0",
        "data": data,
    }


# --- setup --------------------------------------------------------------------------------------


def build_tenancy() -> tuple[Plan, object]:
    """Empty the governed tables and the ledger; one organisation, its workspaces, actors and the auditor."""
    from accounts.models import User
    from audit.services import audited_transaction
    from governance.tenancy.models import Membership, Organization, Workspace

    common.execute("TRUNCATE tenancy_organization, accounts_user RESTART IDENTITY CASCADE")
    common.reset_ledger()
    with audited_transaction():
        organization = Organization.objects.create(name="Ledger admin bench", slug=ORGANIZATION_SLUG)
        workspaces = [
            Workspace.objects.create(
                organization=organization, name=f"Workspace {i}", slug=f"ws-{i}", data_region="EU"
            )
            for i in range(WORKSPACES)
        ]
        actors = [
            User.objects.create(email=f"{name}@ledger-admin.bench", organization=organization, password="!")
            for name in ACTORS
        ]
        for number, user in enumerate(actors):
            for workspace in workspaces:
                Membership.objects.create(
                    user=user, organization=organization, workspace=workspace, role_id=ROLES[number % 4]
                )
        auditor = User.objects.create(email=AUDITOR_EMAIL, organization=organization, password="!")
        Membership.objects.create(
            user=auditor,
            organization=organization,
            workspace=workspaces[AUDITED_WORKSPACE],
            role_id="auditor",
        )
    plan = Plan(
        organization_id=organization.pk,
        workspaces=tuple((w.pk, w.name) for w in workspaces),
        actors=tuple((u.pk, u.email) for u in actors),
    )
    return plan, auditor


def existing_setup(events: int):
    """The auditor, when the database holds this benchmark's data with at least ``events`` events."""
    from accounts.models import User
    from audit.models import AuditEvent

    auditor = User.objects.filter(email=AUDITOR_EMAIL, organization__slug=ORGANIZATION_SLUG).first()
    if auditor is None or AuditEvent.objects.exclude(organization_id=auditor.organization_id).exists():
        return None
    if AuditEvent.objects.filter(organization_id=auditor.organization_id).count() < events:
        return None
    return auditor


def generate(events: int, seal: bool) -> object:
    """Tenancy, then ``events`` events with COPY over the last DAYS days (optionally sealed)."""
    plan, auditor = build_tenancy()
    spacing = DAYS * 86400 / events
    seconds = common.copy_events(
        events, spacing=spacing, values=functools.partial(admin_event_values, plan), fast_canonical=True
    )
    common.show("generate with COPY", common.rate(events, seconds))
    if seal:
        from audit.sealing import ledger_seal_all

        started = time.perf_counter()
        result = ledger_seal_all(sign=True)
        common.show("ledger_seal_all(sign=True)", common.rate(result.sealed, time.perf_counter() - started))
    return auditor


def describe_data(auditor) -> dict:
    """Counts behind each view (setup, not measured), and the values the views use."""
    from django.db.models import Max, Min

    from audit.models import AuditEvent
    from audit.search import search_events
    from governance.access.queries import restrict

    everything = AuditEvent.objects.all()
    visible = restrict(everything, auditor, "audit.view")
    total = everything.count()
    seen = visible.count()
    halfway = visible.order_by("-id").values_list("id", flat=True)[seen // 2]
    span = everything.aggregate(oldest=Min("occurred_at"), newest=Max("occurred_at"))
    middle = span["oldest"] + (span["newest"] - span["oldest"]) / 2
    middle = middle.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = middle + timedelta(days=1) - timedelta(seconds=1)
    in_day = visible.filter(occurred_at__gte=middle, occurred_at__lte=day_end)
    facts = {
        "total": total,
        "visible": seen,
        "halfway_id": halfway,
        "before_halfway": visible.filter(id__lt=halfway).count(),
        "action": visible.filter(action="membership.created").count(),
        "action_all": everything.filter(action="membership.created").count(),
        "denied": visible.filter(outcome="denied").count(),
        "denied_all": everything.filter(outcome="denied").count(),
        "since": middle.strftime("%Y-%m-%d %H:%M:%S"),
        "until": day_end.strftime("%Y-%m-%d %H:%M:%S"),
        "day": in_day.count(),
        "day_all": everything.filter(occurred_at__gte=middle, occurred_at__lte=day_end).count(),
        "search": search_events(visible, SEARCH_WORD).count(),
        "search_all": search_events(everything, SEARCH_WORD).count(),
    }
    common.title("The data (setup, not measured)")
    common.show("events in the ledger", f"{total:,} over {DAYS} days")
    common.show("visible to the auditor (1 workspace)", f"{seen:,}")
    common.show("deep page cursor: before=<id>", f"{halfway} ({facts['before_halfway']:,} older visible)")
    common.show("action=membership.created", f"{facts['action']:,} visible ({facts['action_all']:,} in all)")
    common.show("outcome=denied", f"{facts['denied']:,} visible ({facts['denied_all']:,} in all)")
    common.show("one day", f"{facts['since']} .. {facts['until']} UTC")
    common.show("  events that day", f"{facts['day']:,} visible ({facts['day_all']:,} in all)")
    common.show(f"full text q={SEARCH_WORD}", f"{facts['search']:,} visible ({facts['search_all']:,} in all)")
    return facts


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class View:
    label: str
    params: dict
    median_ms: float = 0.0
    samples: list | None = None
    queries: int = 0
    sql_ms: float = 0.0  # the SQL time Django recorded in the counted request (ms resolution)
    rows: int = 0


def measure(client, url: str, view: View, repeat: int, explain: bool) -> View:
    """Warm up, time ``repeat`` requests (median), then count the queries of one more."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url, view.params)
    if response.status_code != 200:
        raise SystemExit(f"{view.label}: HTTP {response.status_code}")
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.get(url, view.params)
        samples.append((time.perf_counter() - started) * 1000)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, view.params)
    view.samples = samples
    view.median_ms = statistics.median(samples)
    view.queries = len(captured)
    view.sql_ms = sum(float(query["time"]) for query in captured.captured_queries) * 1000
    view.rows = len(list(response.context_data["cl"].result_list))
    if explain:
        show_plans(view, captured.captured_queries)
    return view


def show_plans(view: View, queries: list[dict]) -> None:
    """EXPLAIN ANALYZE of every captured query that reads the event table; the others listed."""
    from django.db import connection

    common.title(f"EXPLAIN: {view.label} {view.params or ''}")
    for number, query in enumerate(queries, start=1):
        sql = query["sql"]
        print(f"  -- query {number} ({float(query['time']) * 1000:.1f} ms): {sql[:160]}")
        if "audit_auditevent" not in sql or not sql.lstrip().upper().startswith("SELECT"):
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            for (line,) in cursor.fetchall():
                print(f"     {line}")


def show_view(view: View, *, verdict: bool = True) -> None:
    """Server time and queries of a view, with PASS/MISS (``verdict``) or without (a what-if)."""
    common.show(
        f"{view.label}: server time (median)",
        f"{view.median_ms:.1f} ms ({view.rows} rows)",
        f"< {TARGET_MS:.0f} ms",
        view.median_ms < TARGET_MS if verdict else None,
    )
    common.show(
        f"{view.label}: SQL queries",
        f"{view.queries} (SQL {view.sql_ms:.0f} ms of the request)",
        f"<= {TARGET_QUERIES}",
        view.queries <= TARGET_QUERIES if verdict else None,
    )


def jit_settings() -> str:
    """The server's JIT settings: JIT compiles a query whose estimated cost is above the thresholds."""
    names = ("jit", "jit_above_cost", "jit_inline_above_cost", "jit_optimize_above_cost")
    from django.db import connection

    with connection.cursor() as cursor:
        values = []
        for name in names:
            cursor.execute(f"SHOW {name}")
            values.append(f"{name}={cursor.fetchone()[0]}")
    return " ".join(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events to generate (default 1000000)")
    parser.add_argument("--repeat", type=int, default=7, help="timed requests per view (default 7)")
    parser.add_argument("--seal", action="store_true", help="seal the generated events (adds about a minute)")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the events if this benchmark's data of that size is there"
    )
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of each view's queries")
    parser.add_argument(
        "--no-what-if", action="store_true", help="skip the what-if run of the views with JIT off"
    )
    common.add_database_arguments(parser)
    options = common.parse_arguments(
        parser, smoke={"events": 2_000, "repeat": 1, "reuse": False, "explain": False, "no_what_if": True}
    )

    common.setup_django(options.database, fresh=options.fresh)
    from django.test import Client
    from django.urls import reverse

    from audit.models import AuditEvent
    from governance.admin_site import site

    print(f"ledger_admin: {options.events:,} events, database {options.database}")
    common.title("Build the data (setup, not measured)")
    auditor = existing_setup(options.events) if options.reuse else None
    if auditor is not None:
        common.show("reused the existing events", f"{AuditEvent.objects.count():,}")
    else:
        auditor = generate(options.events, options.seal)
    common.show("sealed", f"{AuditEvent.objects.filter(sequence__isnull=False).count():,} events")
    common.settle("audit_auditevent")
    facts = describe_data(auditor)

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(auditor)
    common.pass_mfa(client, auditor)  # the control panel opens only to a session that passed MFA
    url = reverse("admin:audit_auditevent_changelist")
    admin = site._registry[AuditEvent]
    views = {
        "page 1": View("page 1", {}),
        "deep page": View("deep page (keyset)", {"before": str(facts["halfway_id"])}),
        "action": View("filter action", {"action": "membership.created"}),
        "outcome": View("filter outcome", {"outcome__exact": "denied"}),
        "day": View("filter one day", {"since": facts["since"], "until": facts["until"]}),
        "search": View("full-text search", {"q": SEARCH_WORD}),
    }
    common.title(f"Changelist as the auditor: median of {options.repeat} requests after one warm-up")
    common.show("server JIT settings", jit_settings())
    page_size = admin.list_per_page
    for view in views.values():
        show_view(measure(client, url, view, options.repeat, options.explain))
    deep_ratio = views["deep page"].median_ms / views["page 1"].median_ms
    common.show(
        "ratio deep page / page 1",
        f"{deep_ratio:.2f}",
        f"<= {TARGET_DEEP_RATIO:.0f}",
        deep_ratio <= TARGET_DEEP_RATIO,
    )

    common.title("Rows per page: page 1 at list_per_page 20 and 100")
    by_size = {}
    try:
        for size in (20, 100):
            admin.list_per_page = size
            by_size[size] = measure(client, url, View(f"page 1, {size} rows", {}), options.repeat, False)
            show_view(by_size[size])
    finally:
        admin.list_per_page = page_size
    same = by_size[20].queries == by_size[100].queries
    common.show(
        "queries at 20 rows = at 100 rows",
        f"{by_size[20].queries} = {by_size[100].queries}",
        "equal",
        same,
    )

    common.title("Summary")
    timed = [*views.values(), *by_size.values()]
    slow = [view.label for view in timed if view.median_ms >= TARGET_MS]
    many = [view.label for view in timed if view.queries > TARGET_QUERIES]
    common.show("views under 200 ms", f"{len(timed) - len(slow)} of {len(timed)}", "all", not slow)
    common.show("views with <= 10 queries", f"{len(timed) - len(many)} of {len(timed)}", "all", not many)
    for label in slow:
        common.show(f"  slow: {label}", "see --explain")

    if not options.no_what_if:
        what_if_jit_off(client, url, views, options.repeat)


def what_if_jit_off(client, url: str, views: dict[str, View], repeat: int) -> None:
    """The same views with JIT compilation off for this benchmark's connection only (no verdicts)."""
    common.title("What-if (no verdict): the same views with SET jit = off on this connection")
    common.execute("SET jit = off")
    try:
        results = {}
        for key, view in views.items():
            results[key] = measure(client, url, View(view.label, view.params), repeat, False)
            show_view(results[key], verdict=False)
        common.show(
            "ratio deep page / page 1", f"{results['deep page'].median_ms / results['page 1'].median_ms:.2f}"
        )
        common.show("jit on this connection after the requests", jit_settings().split()[0])
    finally:
        common.execute("RESET jit")


if __name__ == "__main__":
    main()
