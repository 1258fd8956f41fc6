from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Workflows"

    def ready(self) -> None:
        from audit.events import register_event_codes
        from workflows import evidence, resources
        from workflows.events import WorkflowEvent

        register_event_codes(WorkflowEvent)
        evidence.register()
        resources.register()
