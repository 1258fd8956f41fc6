"""Benchmarks of the audit ledger (append, seal, verify, trigger overhead); see bench/README.md."""
