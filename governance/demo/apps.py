from django.apps import AppConfig


class DemoConfig(AppConfig):
    """Holds the ``seed_demo`` command."""

    name = "governance.demo"
    label = "demo"
    verbose_name = "Demo seed"
