"""The completeness backstop on policies, their per-workspace switches, proposed policy changes
and on-call overrides (an override inserted by hand would let changes apply out of hours)."""

from django.db import migrations

from audit import triggers


class Migration(migrations.Migration):
    dependencies = [("access", "0002_shipped_policies"), ("audit", "0009_backstop_by_content")]

    operations = [
        triggers.capture_operation(
            ("access_policy", "id", ()),
            ("access_policy_disabled_workspaces", "id", ()),
            ("access_policychange", "id", ()),
            ("access_policychange_disabled_workspaces", "id", ()),
            ("access_oncalloverride", "id", ()),
        )
    ]
