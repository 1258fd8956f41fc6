"""Evidence packages: a signed ZIP that proves one workspace's ledger events and records offline.

See docs/evidence.md. ``verify`` is stand-alone (no Django) and is shipped inside each package.
"""
