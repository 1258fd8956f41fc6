"""The kernel: what every floor may import, and which imports no app of the portal.

Request context, redaction, data regions, the governed-resource registry, prefixed tokens and
machine principals, advisory locks, the API plumbing (parser, pagination, error handler) and the
registries through which lower floors learn about higher ones. Nothing here imports
``governance.tenancy``, ``access``, ``crypto``, ``audit``, ``accounts`` or ``workflows``."""
