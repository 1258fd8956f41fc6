"""Cost of the attribute policies: one decision, and a list of 1,000 objects, each against the
role-only check measured in the same run.

The actor holds a role in every workspace; an organisation policy on workspaces (region) and the
four shipped rules are in force, so Cedar evaluates a real policy set. Grants and the policy set
are cached per request as in production (an ``ActorContext`` is bound); the on-call lookup the
policies need is part of the measured cost.

    .venv/bin/python bench/access_policies.py [--objects 1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

DB_NAME = "bench_access"
REGION_RULE = """@id("workspace-region")
forbid(principal, action == Portal::Action::"workspace.manage", resource is Portal::Workspace)
unless { principal has region && principal.region == resource.data_region };
"""


def build(objects: int):
    """An organisation with ``objects`` workspaces (half EU, half US) and a platform administrator."""
    from django.db import connection

    from accounts.models import User
    from governance.access.models import Policy
    from governance.tenancy.models import Membership, Organization, Workspace

    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # setup only: skip the capture triggers
        cursor.execute(
            "TRUNCATE tenancy_membership, accounts_user, tenancy_workspace, tenancy_organization CASCADE"
        )
        cursor.execute("DELETE FROM access_policy WHERE organization_id IS NOT NULL")
        organization = Organization.objects.create(name="Bench", slug="bench")
        actor = User.objects.create(email="admin@bench.test", organization=organization, region="EU")
        Membership.objects.create(user=actor, organization=organization, role_id="platform_admin")
        Workspace.objects.bulk_create(
            Workspace(
                organization=organization, name=f"W{i}", slug=f"w{i}", data_region="EU" if i % 2 else "US"
            )
            for i in range(objects)
        )
        Policy.objects.create(organization=organization, name="workspace-region", text=REGION_RULE)
        cursor.execute("SET session_replication_role = DEFAULT")
    return actor, list(Workspace.objects.filter(organization=organization).order_by("id"))


def timed(function, repeat: int) -> float:
    """Median seconds of ``function()`` over ``repeat`` runs (after one warm-up)."""
    function()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--singles", type=int, default=500, help="decisions per single-decision sample")
    common.add_database_arguments(parser, default=DB_NAME)
    args = common.parse_arguments(parser, smoke={"objects": 50, "repeat": 1, "singles": 20})
    common.setup_django(args.database, fresh=args.fresh)

    from governance.access.decision import _decide, decide, decide_many
    from governance.core.context import ActorContext, bind_context

    actor, workspaces = build(args.objects)
    target = workspaces[1]  # an EU workspace: allowed by roles and by the policies
    common.title(f"Attribute policies: one decision, and {len(workspaces):,} objects")
    with bind_context(ActorContext()):
        role_one = timed(lambda: [_decide(actor, "workspace.manage", target, None, fresh=False, policies=False)
                                  for _ in range(args.singles)], args.repeat) / args.singles  # fmt: skip
        policy_one = timed(lambda: [decide(actor, "workspace.manage", target) for _ in range(args.singles)],
                           args.repeat) / args.singles  # fmt: skip
        role_list = timed(lambda: [_decide(actor, "workspace.manage", w, None, fresh=False, policies=False)
                                   for w in workspaces], args.repeat)  # fmt: skip
        batch_list = timed(lambda: decide_many(actor, "workspace.manage", workspaces), args.repeat)
        single_list = timed(
            lambda: [decide(actor, "workspace.manage", w) for w in workspaces], max(3, args.repeat // 2)
        )
        allowed = sum(d.allowed for d in decide_many(actor, "workspace.manage", workspaces))
    common.show("one decision, role-only", f"{role_one * 1e6:,.0f} µs")
    common.show("one decision, roles + policies", f"{policy_one * 1e6:,.0f} µs",
                f"ratio {policy_one / role_one:.1f}× role-only")  # fmt: skip
    common.show(f"{len(workspaces):,} objects, role-only", f"{role_list * 1e3:,.1f} ms")
    common.show(f"{len(workspaces):,} objects, policies in batches", f"{batch_list * 1e3:,.1f} ms",
                f"ratio {batch_list / role_list:.1f}× role-only")  # fmt: skip
    common.show(
        f"{len(workspaces):,} objects, one decide() each",
        f"{single_list * 1e3:,.1f} ms",
        f"ratio {single_list / role_list:.1f}× role-only; batch is {single_list / batch_list:.1f}× faster",
    )
    common.show("allowed after policies", f"{allowed:,} of {len(workspaces):,} (the EU half)")
    engine_only(actor, workspaces[1], args.objects, args.repeat)


def engine_only(actor, workspace, count: int, repeat: int) -> None:
    """Lists of workflows share a workspace: one Cedar batch against one call per object."""
    from django.utils import timezone

    from governance.access import cedar
    from governance.access.policies import policies_in_force, principal_entity

    compiled = policies_in_force(workspace.organization_id, workspace.pk)
    at = timezone.now()
    context = cedar.business_context(
        time_zone=workspace.time_zone,
        start=workspace.business_hours_start,
        end=workspace.business_hours_end,
        days=workspace.business_days,
        at=at,
    )
    principal = principal_entity(actor, workspace.pk, at)
    ws_uid = cedar.uid("Workspace", workspace.pk)
    workflows = [{"uid": cedar.uid("Workflow", i), "parents": [],
                  "attrs": {"data_region": "EU", "handles_pii": bool(i % 3), "environment": "production",
                            "workspace": {"__entity": ws_uid}}} for i in range(count)]  # fmt: skip
    base = [
        principal,
        {"uid": ws_uid, "attrs": {"data_region": "EU", "time_zone": workspace.time_zone}, "parents": []},
    ]
    entities = base + workflows

    def one_by_one():
        for workflow in workflows:
            cedar.evaluate(
                compiled,
                principal=principal["uid"],
                action="workflow.edit",
                resource=workflow["uid"],
                entities=[*base, workflow],
                context=context,
            )

    def batch():
        cedar.evaluate_batch(
            compiled,
            principal=principal["uid"],
            action="workflow.edit",
            resources=[w["uid"] for w in workflows],
            entities=entities,
            context=context,
            message_values=[{}] * len(workflows),
        )

    single = timed(one_by_one, max(3, repeat // 2))
    batched = timed(batch, repeat)
    common.show(f"engine: {count:,} workflows of one workspace, one call each", f"{single * 1e3:,.1f} ms")
    common.show(f"engine: {count:,} workflows of one workspace, one batch", f"{batched * 1e3:,.1f} ms",
                f"batch is {single / batched:.1f}× faster")  # fmt: skip


if __name__ == "__main__":
    main()
