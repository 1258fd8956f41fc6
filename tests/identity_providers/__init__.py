"""Real identity providers the SSO tests start on 127.0.0.1: an OpenID provider (the npm package
oidc-provider, under oidc/) and a SAML IdP built on pysaml2 (saml_idp.py)."""
