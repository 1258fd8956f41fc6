"""Identity providers, their group → role mappings and the sign-in policy in the control panel
(platform administrators: ``organization.manage``). Writes go through accounts.sso.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html

from accounts.models import GroupRoleMapping, IdentityProvider, SignInPolicy, validate_email_domain
from accounts.sso import services
from governance.access.admin_base import GovernedModelAdmin, visible_choices
from governance.tenancy.models import Role, RoleScope


class IdentityProviderForm(forms.ModelForm):
    """The provider's settings; the client secret is write-only and the MFA values a list."""

    client_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="OIDC client secret (stored encrypted, never shown again). Leave empty to keep the current one.",
    )
    accepted_mfa_claims = forms.CharField(
        required=False,
        help_text="Comma-separated values that count as MFA: OIDC amr (e.g. mfa, otp, hwk) or acr values; "
        "SAML AuthnContextClassRef URIs.",
    )

    allowed_domains = forms.CharField(
        required=True,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="E-mail domains this provider may sign in, comma- or line-separated (e.g. example.com). "
        "Only identities with an address in one of them are provisioned, linked or signed in; a "
        "domain another organisation lists is refused.",
    )

    oidc_issuer = forms.URLField(
        required=False,
        assume_scheme="https",
        help_text=IdentityProvider._meta.get_field("oidc_issuer").help_text,
    )
    saml_idp_sso_url = forms.URLField(required=False, assume_scheme="https", label="SAML IdP SSO URL")

    class Meta:
        model = IdentityProvider
        fields = [*list(services.PROVIDER_FIELDS[:2]), "kind", *services.PROVIDER_FIELDS[2:]]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance._state.adding:  # the UUID primary key is set before the first save
            self.fields["kind"].disabled = True
            self.fields["slug"].disabled = True
            self.initial["accepted_mfa_claims"] = ", ".join(self.instance.accepted_mfa_claims or [])
            self.initial["allowed_domains"] = ", ".join(self.instance.allowed_domains or [])

    def clean_allowed_domains(self) -> list[str]:
        raw = (self.cleaned_data.get("allowed_domains") or "").replace("\n", ",")
        domains: list[str] = []
        errors: list[str] = []
        for item in (value.strip() for value in raw.split(",")):
            if not item:
                continue
            try:
                domain = validate_email_domain(item.removeprefix("@"))
            except ValidationError as error:
                errors.extend(error.messages)
                continue
            if domain not in domains:
                domains.append(domain)
        if errors:
            raise ValidationError(errors)
        if not domains:
            raise ValidationError("List at least one e-mail domain.")
        return domains

    def clean_accepted_mfa_claims(self) -> list[str]:
        raw = self.cleaned_data.get("accepted_mfa_claims") or ""
        return [value.strip() for value in raw.split(",") if value.strip()]


@admin.register(IdentityProvider)
class IdentityProviderAdmin(GovernedModelAdmin):
    form = IdentityProviderForm
    list_display = ["name", "kind", "slug", "enabled", "trust_idp_mfa", "addresses"]
    list_filter = ["kind", "enabled"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "kind", "enabled", "allowed_domains"]}),
        ("OpenID Connect", {"fields": ["oidc_issuer", "oidc_client_id", "client_secret"]}),
        (
            "SAML 2.0",
            {
                "fields": [
                    "saml_idp_entity_id",
                    "saml_idp_sso_url",
                    "saml_idp_x509_cert",
                    "saml_sp_entity_id",
                    "email_claim",
                ]
            },
        ),
        ("Groups and MFA", {"fields": ["groups_claim", "trust_idp_mfa", "accepted_mfa_claims"]}),
    ]

    @admin.display(description="addresses for the IdP")
    def addresses(self, provider) -> str:
        if provider.kind == "oidc":
            return format_html("redirect URI: {}", reverse("openid_connect_callback", args=[provider.slug]))
        return format_html(
            "ACS: {} · metadata: {}",
            reverse("saml_acs", args=[provider.slug]),
            reverse("saml_metadata", args=[provider.slug]),
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change, **kwargs)

        class OrganisationForm(base):
            """A new provider belongs to the administrator's organisation: its allow-list applies
            when the form checks the issuer against the network boundary."""

            def __init__(self, *args, **form_kwargs):
                super().__init__(*args, **form_kwargs)
                if self.instance._state.adding and self.instance.organization_id is None:
                    self.instance.organization_id = request.user.organization_id

        return OrganisationForm

    def service_save(self, request, obj, form, change):
        data = {
            name: form.cleaned_data.get(name)
            for name in services.PROVIDER_FIELDS
            if name in form.cleaned_data
        }
        secret = form.cleaned_data.get("client_secret") or None
        if change:
            data.pop("slug", None)
            return services.identity_provider_update(
                actor=request.user, provider=obj, client_secret=secret, **data
            )
        return services.identity_provider_create(
            actor=request.user,
            organization=request.user.organization,
            kind=form.cleaned_data["kind"],
            client_secret=secret,
            **data,
        )


class GroupRoleMappingForm(forms.ModelForm):
    class Meta:
        model = GroupRoleMapping
        fields = ["provider", "group", "workspace", "role"]


@admin.register(GroupRoleMapping)
class GroupRoleMappingAdmin(GovernedModelAdmin):
    """Mappings are added or removed, never edited (a changed mapping is a new one)."""

    form = GroupRoleMappingForm
    list_display = ["group", "provider", "workspace", "role"]
    list_filter = ["provider"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # Providers and workspaces: the visible rows the decision point gives every choice list.
        if db_field.name == "role":
            kwargs["queryset"] = visible_choices(request, Role, self.admin_site).filter(
                scope=RoleScope.WORKSPACE
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        return services.group_mapping_create(
            actor=request.user,
            provider=data["provider"],
            group=data["group"],
            workspace=data["workspace"],
            role=data["role"],
        )

    def service_delete(self, request, obj) -> None:
        services.group_mapping_delete(actor=request.user, mapping=obj)


@admin.register(SignInPolicy)
class SignInPolicyAdmin(GovernedModelAdmin):
    """The organisation's sign-in policy: switch password sign-in off when SSO is mandatory."""

    fields = ["local_password_disabled", "updated_at"]
    readonly_fields = ["updated_at"]
    list_display = ["organization", "local_password_disabled", "updated_at"]

    def has_add_permission(self, request) -> bool:
        org = request.user.organization_id
        return (
            super().has_add_permission(request)
            and not SignInPolicy.objects.filter(organization_id=org).exists()
        )

    def service_save(self, request, obj, form, change):
        organization = obj.organization if change else request.user.organization
        return services.sign_in_policy_set(
            actor=request.user,
            organization=organization,
            local_password_disabled=form.cleaned_data["local_password_disabled"],
        )
