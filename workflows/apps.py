from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from audit.events import register_event_codes
        from governance.core.outbound.boundary import register_allow_list_source
        from workflows.ai import checks as ai_checks
        from workflows.ai import resources as ai_register
        from workflows.changes import evidence as changes_evidence
        from workflows.changes import resources as changes
        from workflows.credentials import evidence as credentials_evidence
        from workflows.credentials import resources as credentials
        from workflows.events import WorkflowEvent
        from workflows.executions import evidence as executions_evidence
        from workflows.executions import resources as executions
        from workflows.integrations import resources as integrations
        from workflows.integrations.selectors import organization_allow_list
        from workflows.service_accounts import evidence as service_accounts_evidence
        from workflows.service_accounts import resources as service_accounts

        register_event_codes(WorkflowEvent)
        ai_checks.register()
        register_allow_list_source(organization_allow_list)
        for evidence in (
            changes_evidence,
            service_accounts_evidence,
            credentials_evidence,
            executions_evidence,
        ):
            evidence.register()
        for sub_domain in (changes, integrations, service_accounts, credentials, executions, ai_register):
            sub_domain.register()
