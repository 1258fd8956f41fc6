"""Retention of the ledger: how long each scope keeps its events (frameworks in scope), legal
holds, and archive-then-prune runs that delete old content while keeping every proof valid
(docs/retention.md)."""
