"""SCIM 2.0 provisioning (RFC 7643/7644): tokens, the principal they authenticate, the services
that apply an identity provider's changes, and the endpoints under ``/scim/v2/``."""
