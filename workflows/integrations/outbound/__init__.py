"""Integrations' side of the network boundary (``governance.core.outbound``): the client that
calls an integration's endpoint and records refusals as ``integration.outbound_refused``. (The
organisation's ``NetworkAllowRule`` rows reach the boundary as an allow-list source, registered
in the app's ``ready`` from ``workflows.integrations.selectors``.)

Which endpoints may be called, and how, is decided in the kernel: every server-side fetch of the
portal (integrations, OpenID Connect discovery and keys) goes through the same check and client.
"""
