"""The network boundary of every server-side fetch: which URLs may be fetched, and the client that
fetches them.

``boundary.endpoint_check`` decides whether a URL may be called: https only, no credentials in
the URL, and no internal destination — loopback, private, link-local, shared (CGNAT), multicast,
reserved and cloud metadata addresses are refused, however they are spelt (``2130706433``,
``0177.0.0.1``, ``127.1``, ``[::ffff:127.0.0.1]``) and whatever a host name resolves to, with a
deadline on the lookup. The operator's ``OUTBOUND_ALLOW_LIST`` and an organisation's allow-list
(a source a higher floor registers) lift the refusal for a named host or a network.

``client.OutboundClient`` calls only what the check allowed: it connects to the very address the
check resolved (a second DNS answer cannot move it inside: no DNS rebinding), verifies the
certificate for the host name with TLS 1.2 or newer, optionally pins the server's public key,
caps time and response size, and follows redirects itself, checking every hop again. Its errors
never repeat request headers or bodies: they carry credentials. ``requests_session`` hands the
same client to libraries that fetch with ``requests`` (django-allauth).
"""
