"""The security guide's four attribute rules, shipped as policies in force for every organisation.

Organisations switch them off per workspace, or change them, through approved policy changes.
"""

from django.db import migrations

POLICIES = [
    (
        "region-data-residency",
        "People work only on workflows that process their own region's data.",
        """@id("region-data-residency")
@message("Denied by policy region-data-residency: this workflow processes {resource_data_region} data and your region is {principal_region}.")
forbid(principal, action, resource is Portal::Workflow)
unless { principal has region && principal.region == resource.data_region };
""",
    ),
    (
        "pii-privacy-approval",
        "A change to a workflow that handles personal data takes effect only with a privacy approval.",
        """@id("pii-privacy-approval")
@message("Denied by policy pii-privacy-approval: this workflow handles personal data, so the change needs a privacy approval before it takes effect.")
forbid(principal, action == Portal::Action::"workflow.activate", resource is Portal::Workflow)
when { resource.handles_pii }
unless { context has privacy_approved && context.privacy_approved };
""",
    ),
    (
        "production-business-hours",
        "Production workflows are changed or triggered in business hours, unless the person holds an on-call override.",
        """@id("production-business-hours")
@message("Denied by policy production-business-hours: it is {local_time} in {time_zone}, outside {business_hours}. Request an on-call override.")
forbid(
    principal,
    action in [Portal::Action::"workflow.edit", Portal::Action::"workflow.activate", Portal::Action::"execution.trigger"],
    resource is Portal::Workflow
)
when { resource.environment == "production" && !context.within_business_hours }
unless { principal.oncall_active };
""",
    ),
    (
        "sensitive-integration-manager-approval",
        "Connecting a financial or HR integration needs the requester's manager's approval.",
        """@id("sensitive-integration-manager-approval")
@message("Denied by policy sensitive-integration-manager-approval: connecting a {resource_sensitivity} integration needs your manager's approval.")
forbid(principal, action == Portal::Action::"integration.manage", resource is Portal::Integration)
when { ["financial", "hr"].contains(resource.sensitivity) }
unless { context has manager_approved && context.manager_approved };
""",
    ),
]


def ship(apps, schema_editor):
    Policy = apps.get_model("access", "Policy")
    for name, description, text in POLICIES:
        Policy.objects.update_or_create(
            organization=None, name=name, defaults={"description": description, "text": text, "enabled": True}
        )


def unship(apps, schema_editor):
    apps.get_model("access", "Policy").objects.filter(
        organization=None, name__in=[p[0] for p in POLICIES]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("access", "0001_policies")]

    operations = [migrations.RunPython(ship, unship)]
