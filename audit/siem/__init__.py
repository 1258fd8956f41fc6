"""SIEM sinks: the ledger streamed, in ledger order and without loss, to syslog over TLS, Splunk
HEC, Elastic/OpenSearch ``_bulk``, Datadog logs and signed webhooks (docs/siem.md)."""
