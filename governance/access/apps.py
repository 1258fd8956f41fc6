from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "governance.access"
    label = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        from audit.events import register_event_codes
        from governance.access import evidence
        from governance.access.events import AccessEvent
        from governance.access.models import OnCallOverride, Policy, PolicyChange
        from governance.core.resources import Resource, register

        register_event_codes(AccessEvent)
        evidence.register()

        # Policies are organisation-wide reference data (shipped ones belong to no organisation);
        # the admin narrows the list to the shipped ones and the user's own organisation's.
        register(
            Resource(Policy, organization_field=None, workspace_field=None, actions={"view": "policy.view"})
        )
        register(
            Resource(
                PolicyChange,
                organization_field="organization",
                workspace_field=None,
                actions={"view": "policy.view", "add": "policy.manage", "change": "policy.manage"},
            )
        )
        register(
            Resource(
                OnCallOverride,
                organization_field="workspace__organization",
                workspace_field="workspace",
                actions={"view": "workspace.view", "add": "oncall.activate", "change": "oncall.activate"},
            )
        )
