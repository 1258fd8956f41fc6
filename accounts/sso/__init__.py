"""Single sign-on: OpenID Connect and SAML identity providers per organisation, through
django-allauth's ``socialaccount`` with providers and an adapter of our own."""
