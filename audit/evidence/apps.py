from django.apps import AppConfig


class EvidenceConfig(AppConfig):
    """Evidence packages: orders, the build, signed download links, the offline verifier. An app of
    its own (no models: orders are the ledger's) so that its admin, tasks and commands are found
    on the top floor, above the ledger they read."""

    name = "audit.evidence"
    label = "evidence"
    verbose_name = "Evidence packages"
