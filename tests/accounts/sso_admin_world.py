"""Identity providers, group mappings and sign-in policies in the test world (own and foreign
organisation), for the admin matrix."""

from __future__ import annotations

from accounts.models import GroupRoleMapping, IdentityProvider, ProviderKind, SignInPolicy
from governance.tenancy.models import Role


def sso_objects_of(world) -> dict[str, dict[str, object]]:
    """Per organisation: an OIDC provider, one group mapping and the sign-in policy (made once)."""
    made = getattr(world, "sso_objects", None)
    if made is not None:
        return made
    made = {"accounts.identityprovider": {}, "accounts.grouprolemapping": {}, "accounts.signinpolicy": {}}
    for scope, organization, workspace in (
        ("own", world.org, world.ws),
        ("foreign", world.foreign_org, world.foreign),
    ):
        provider = IdentityProvider.objects.create(
            organization=organization, kind=ProviderKind.OIDC, name=f"{scope} IdP", slug=f"{scope}-idp",
            oidc_issuer="https://idp.example/", oidc_client_id=f"{scope}-client",
            allowed_domains=[f"{organization.slug}.test"],
        )  # fmt: skip
        made["accounts.identityprovider"][scope] = provider
        made["accounts.grouprolemapping"][scope] = GroupRoleMapping.objects.create(
            provider=provider,
            group="builders",
            workspace=workspace,
            role=Role.objects.get(pk="workflow_builder"),
        )
        made["accounts.signinpolicy"][scope] = SignInPolicy.objects.create(organization=organization)
    world.sso_objects = made
    return made
