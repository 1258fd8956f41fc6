"""Users of the portal. E-mail is the login; nobody is a superuser."""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin, _user_has_module_perms, _user_has_perm
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from governance.core.outbound.boundary import endpoint_check
from governance.core.regions import DataRegion
from governance.core.text import identifier
from governance.crypto.fields import EncryptedTextField


class UserManager(BaseUserManager):
    """Creates users; refuses to create superusers (platform administrators are a role)."""

    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        """The address as an identifier (``governance.core.text``): NFKC-normalised, with an
        invisible, format or control character refused (``ValidationError``), so that no account
        looks on screen like another one. Lower-casing is left to the callers, as before."""
        email = super().normalize_email(email)
        return identifier(email) if email else email

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        if not email:
            raise ValueError("A user needs an e-mail address.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        return user

    def get_by_natural_key(self, username: str) -> User:
        return self.get(email=(username or "").strip().lower())

    def create_superuser(self, *args, **kwargs):
        raise ImproperlyConfigured(
            "Superusers are disabled. Create a platform administrator instead: "
            "python manage.py create_platform_admin --organization SLUG --email ADDRESS"
        )


class DeactivatedBy(models.TextChoices):
    """Who deactivated an account: an identity provider over SCIM may reactivate only what it
    deactivated itself, never an account an administrator (or the system) switched off."""

    ADMINISTRATOR = "administrator", "An administrator"
    PROVISIONING = "provisioning", "The identity provider (SCIM)"
    SYSTEM = "system", "The system (a command or a job)"


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in. Belongs to one organisation; what they may do comes from roles.

    ``is_superuser`` exists only because ``PermissionsMixin`` and django-guardian expect it;
    a database constraint keeps it false, and permission checks never consult it.
    """

    email = models.EmailField("e-mail address", max_length=254, unique=True)
    display_name = models.CharField(max_length=150, blank=True)
    organization = models.ForeignKey("tenancy.Organization", on_delete=models.PROTECT, related_name="users")
    is_active = models.BooleanField(default=True)
    # Attributes the access policies read (see governance/access/cedar.py).
    region = models.CharField(
        max_length=8,
        blank=True,
        choices=DataRegion.choices,
        help_text="Data region this person may work on; empty means none.",
    )
    department = models.CharField(max_length=100, blank=True)
    manager = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="reports"
    )
    security_training_expires_on = models.DateField(
        null=True, blank=True, help_text="Security training is current until this day (inclusive)."
    )
    date_joined = models.DateTimeField(default=timezone.now)
    # Set by SCIM provisioning: the identity provider's own id, and when it deprovisioned the
    # account (a SCIM DELETE deactivates and marks; rows the ledger names are never deleted).
    scim_external_id = models.CharField("SCIM externalId", max_length=255, blank=True)
    deprovisioned_at = models.DateTimeField(null=True, blank=True)
    deactivated_by = models.CharField(
        max_length=16,
        choices=DeactivatedBy.choices,
        blank=True,
        help_text="Who deactivated the account (empty while it is active).",
    )

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
            models.CheckConstraint(
                condition=models.Q(is_superuser=False), name="accounts_user_never_superuser"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.email

    def clean(self) -> None:
        super().clean()
        try:
            self.email = self.__class__.objects.normalize_email(self.email).lower()
        except ValidationError as refused:
            raise ValidationError({"email": refused.messages}) from None

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return self.display_name or self.email

    # Permission questions always go through the authentication backends (and so through the
    # decision point); PermissionsMixin would answer True for superusers without asking.
    def has_perm(self, perm: str, obj=None) -> bool:
        return self.is_active and _user_has_perm(self, perm, obj)

    def has_perms(self, perm_list, obj=None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        return self.is_active and _user_has_module_perms(self, app_label)


class SessionEnd(models.TextChoices):
    LOGOUT = "logout", "Signed out"
    IDLE = "idle", "Idle timeout"
    ABSOLUTE = "absolute", "Absolute timeout"
    ENDED_BY_USER = "ended_by_user", "Ended by its user from another session"
    FORCED = "forced", "Ended by an administrator"
    LIMIT = "limit", "Ended: too many sessions (the oldest gives way)"
    REFUSED = "refused", "Refused: too many sessions"
    DEACTIVATED = "deactivated", "The account was deactivated"
    CONDITIONAL = "conditional", "Refused by the organisation's access policy"


class TokenRevocation(models.TextChoices):
    """Why API tokens were revoked (the ``reason`` of ``api_token.revoked``)."""

    PASSWORD_SET = "password_set", "A password was set for the account"
    PASSWORD_CHANGED = "password_changed", "Its owner changed the password"
    PASSWORD_RESET = "password_reset", "The password was reset"
    BY_OWNER = "by_owner", "Revoked by its owner"


class UserSession(models.Model):
    """One signed-in session: who, from where, since when, last seen, and how it ended.

    It names the Django session by a SHA-256 digest of its key, never the key itself. Every
    request of a session checks its row (``SessionControlMiddleware``), so ending the row — by
    its user, an administrator, a timeout or the concurrency limit — ends the session at its
    next request.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sessions")
    session_ref = models.CharField(max_length=64, unique=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    # From a trusted proxy's header only (governance.core.middleware.client_country); empty when unknown.
    country = models.CharField(max_length=2, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    mfa_verified_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=SessionEnd.choices, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "ended_at"], name="accounts_session_live")]

    def __str__(self) -> str:
        return f"{self.user} since {self.created_at:%Y-%m-%d %H:%M}"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None


# --- SCIM provisioning (see accounts/scim/ and docs/identity.md) ---------------------------------


class ScimToken(models.Model):
    """A bearer token with which an organisation's identity provider provisions users over SCIM.

    Read ``gpscim_<prefix>_<secret>``: the prefix is public and finds the row, the secret is 256
    random bits of which only the SHA-256 digest is stored (a fast hash suits a random secret:
    there is nothing to guess that a slow, salted hash would protect). The plaintext is shown
    once, when the token is created, and never again.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="scim_tokens"
    )
    name = models.CharField(max_length=120, help_text="Which identity provider uses it, e.g. 'Entra ID'.")
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["organization", "-created_at"]
        verbose_name = "SCIM token"

    def __str__(self) -> str:
        return f"{self.name} (gpscim_{self.prefix}_…)"

    def refusal(self, at) -> str | None:
        """Why the token is not accepted at ``at``, or None when it is."""
        if self.revoked_at is not None and self.revoked_at <= at:
            return "revoked"
        if self.expires_at <= at:
            return "expired"
        return None


class ScimGroup(models.Model):
    """A group the identity provider pushed over SCIM, with its members.

    Groups carry no permission by themselves: a mapping from an identity-provider group to a role
    is a separate decision (its ``display_name`` and ``external_id`` are what such a mapping
    names). Membership changes are SCIM calls, each with its ledger event.
    """

    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="scim_groups"
    )
    display_name = models.CharField(max_length=255)
    external_id = models.CharField(max_length=255, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="scim_groups", blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "display_name"]
        verbose_name = "SCIM group"
        constraints = [
            models.UniqueConstraint(
                "organization", Lower("display_name"), name="accounts_scimgroup_name_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name


class DeviceCompliance(models.TextChoices):
    OFF = "off", "Not required"
    STEP_UP = "step_up", "Required, or a second factor"
    REQUIRE = "require", "Required: refuse other devices"


def _networks() -> list:
    return []


class ConditionalAccessPolicy(models.Model):
    """An organisation's conditional-access rules, weighed at every sign-in and whenever a live
    session's network changes (``accounts.conditional``).

    Network lists hold normalised CIDRs (IPv4 and IPv6). A denied network, or an allow-list the
    address is not on, refuses outright; so does a non-compliant device when ``device_compliance``
    is ``require``. Otherwise the risk factors add up to a score: at ``step_up_score`` a second
    factor is required, at ``deny_score`` the sign-in is refused.
    """

    organization = models.OneToOneField(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="conditional_access_policy"
    )
    enabled = models.BooleanField(default=True)
    allowed_networks = models.JSONField(default=_networks, blank=True)
    denied_networks = models.JSONField(default=_networks, blank=True)
    device_compliance = models.CharField(
        max_length=8, choices=DeviceCompliance.choices, default=DeviceCompliance.OFF
    )
    step_up_score = models.PositiveSmallIntegerField(default=30)
    deny_score = models.PositiveSmallIntegerField(default=80)
    new_network_weight = models.PositiveSmallIntegerField(default=20)
    new_country_weight = models.PositiveSmallIntegerField(default=30)
    recent_failure_weight = models.PositiveSmallIntegerField(
        default=10, help_text="Per failed sign-in counted against the account now (at most three)."
    )
    impossible_travel_weight = models.PositiveSmallIntegerField(default=60)
    travel_window_minutes = models.PositiveIntegerField(
        default=120,
        help_text="A sign-in from another country than a session seen this many minutes ago is "
        "impossible travel.",
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "conditional access policy"
        verbose_name_plural = "conditional access policies"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(step_up_score__lte=models.F("deny_score")),
                name="accounts_conditional_step_up_below_deny",
            )
        ]

    def __str__(self) -> str:
        return f"Conditional access · {self.organization}"


def backup_code_digest(*, user_id: int, code: str) -> str:
    """Keyed digest of one backup code (HMAC-SHA-256 under the SECRET_KEY, bound to its user).

    Codes carry 50 random bits: a plain hash could be searched offline from a copy of the
    database; without the key, a digest is useless. Changing the SECRET_KEY voids every code.
    """
    normalized = "".join(code.split()).replace("-", "").upper()
    return salted_hmac("accounts.backup-code", f"{user_id}:{normalized}", algorithm="sha256").hexdigest()


class BackupCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """One person's set of single-use backup codes, a django-otp device.

    The codes are kept only as keyed digests (``BackupCode``), never in clear — unlike
    django-otp's static plugin, which stores its tokens as typed. A code is spent by deleting
    its row, so two requests cannot both use it. Failures are throttled like the TOTP device's.
    """

    class Meta(Device.Meta):
        verbose_name = "backup code set"

    def verify_token(self, token) -> bool:
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        digest = backup_code_digest(user_id=self.user_id, code=str(token))
        spent, _ = self.codes.filter(digest=digest).delete()
        if spent:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment(commit=True)
        return False

    def get_throttle_factor(self) -> int:
        return settings.MFA_BACKUP_CODE_THROTTLE_FACTOR

    @property
    def remaining(self) -> int:
        return self.codes.count()


class BackupCode(models.Model):
    """One unused backup code of a ``BackupCodeDevice``, as its keyed digest."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)

    class Meta:
        indexes = [models.Index(fields=["device", "digest"], name="accounts_backupcode_lookup")]

    def __str__(self) -> str:
        return f"backup code of {self.device.user}"


# --- Single sign-on (OIDC and SAML through django-allauth; see accounts/sso and docs/identity.md) ---


_DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


class ProviderKind(models.TextChoices):
    OIDC = "oidc", "OpenID Connect"
    SAML = "saml", "SAML 2.0"


def _claim_list_validator(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValidationError("Give a list of non-empty values.")


def validate_email_domain(value: object) -> str:
    """One e-mail domain as stored: lower case, IDNA (punycode) for international names, at least
    two labels of letters, digits and hyphens. Returns the normalised domain or raises."""
    text = str(value or "").strip().lower().rstrip(".")
    try:
        ascii_domain = text.encode("idna").decode("ascii") if text else ""
    except UnicodeError:
        ascii_domain = ""
    labels = ascii_domain.split(".")
    if (
        len(labels) < 2
        or len(ascii_domain) > 253
        or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(
            f"'{text[:80]}' is not an e-mail domain; write it as in the addresses, e.g. example.com."
        )
    return ascii_domain


def _domain_list_validator(value) -> None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("Give a list of e-mail domains.")
    for item in value:
        if validate_email_domain(item) != item:
            raise ValidationError(f"Store '{item[:80]}' in its normal form (lower case, punycode).")


class IdentityProvider(models.Model):
    """An organisation's OpenID provider or SAML identity provider, fed to django-allauth by
    ``accounts.sso.adapter`` (never through allauth's own SocialApp table, which no service governs).

    The OIDC client secret is stored encrypted (platform key, purpose ``credentials``) and bound to
    this row; the MFA choice says whether the IdP's MFA claim is trusted, and which values count;
    ``allowed_domains`` says whose identities it may vouch for (the organisation's e-mail domains).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="identity_providers"
    )
    kind = models.CharField(max_length=8, choices=ProviderKind.choices)
    name = models.CharField(max_length=100, help_text="Shown on the sign-in button.")
    slug = models.SlugField(
        max_length=50,
        unique=True,
        help_text="Part of the sign-in, callback and ACS addresses; never change it.",
    )
    enabled = models.BooleanField(default=True)
    # OpenID Connect
    oidc_issuer = models.URLField(
        blank=True, help_text="Issuer URL (its /.well-known/openid-configuration is read)."
    )
    oidc_client_id = models.CharField(max_length=255, blank=True)
    oidc_client_secret = EncryptedTextField(purpose="credentials", workspace_field=None, null=True)
    # SAML 2.0
    saml_idp_entity_id = models.CharField(max_length=255, blank=True)
    saml_idp_sso_url = models.URLField(blank=True)
    saml_idp_x509_cert = models.TextField(blank=True, help_text="The IdP's signing certificate (PEM).")
    saml_sp_entity_id = models.CharField(
        max_length=255, blank=True, help_text="Our entity id at the IdP; empty: the metadata URL."
    )
    groups_claim = models.CharField(
        max_length=255,
        default="groups",
        help_text="OIDC claim or SAML attribute that lists the person's groups.",
    )
    email_claim = models.CharField(
        max_length=255, blank=True, help_text="SAML attribute holding the e-mail address (empty: the NameID)."
    )
    # MFA: trust the IdP's claim (OIDC amr/acr, SAML AuthnContextClassRef) or demand local MFA too.
    trust_idp_mfa = models.BooleanField(default=False)
    accepted_mfa_claims = models.JSONField(default=list, blank=True, validators=[_claim_list_validator])
    # Only identities whose e-mail domain is listed are provisioned, linked or signed in; empty
    # refuses every sign-in (fail closed). No other organisation may list the same domain.
    allowed_domains = models.JSONField(
        default=list,
        blank=True,
        validators=[_domain_list_validator],
        help_text="E-mail domains this provider may sign in (e.g. example.com); each listed exactly.",
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["organization", "name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        """The issuer must pass the network boundary: an anonymous sign-in makes the server fetch
        its discovery document. (Each fetch is checked again; this refuses the setting early.)
        Checked as those fetches are: only the operator's ``OUTBOUND_ALLOW_LIST`` lifts a refusal,
        never the organisation's own allow-list rules."""
        super().clean()
        if self.oidc_issuer:
            try:
                endpoint_check(self.oidc_issuer, organization=None, require_resolution=False)
            except ValidationError as error:
                raise ValidationError({"oidc_issuer": error.messages}) from None


class GroupRoleMapping(models.Model):
    """An IdP group gives a role in one workspace of the provider's organisation. Only these rows
    give roles to people who sign in through SSO; workspace roles only (no organisation-wide role,
    so no IdP group can make anyone a platform administrator)."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="group_mappings")
    group = models.CharField(max_length=255)
    workspace = models.ForeignKey("tenancy.Workspace", on_delete=models.PROTECT, related_name="+")
    role = models.ForeignKey("tenancy.Role", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["provider", "group", "workspace"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "group", "workspace"], name="accounts_group_mapping_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.group} → {self.role_id} in {self.workspace}"


class SsoMembership(models.Model):
    """Marks a membership as given by a group mapping, so that later sign-ins may take it away
    again (memberships given by hand are never touched by SSO)."""

    membership = models.OneToOneField("tenancy.Membership", on_delete=models.CASCADE, related_name="sso_link")
    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.membership} (from {self.provider.slug})"


class SignInPolicy(models.Model):
    """How an organisation's people sign in: with ``local_password_disabled`` only through its
    identity providers (password sign-in is refused and recorded)."""

    organization = models.OneToOneField(
        "tenancy.Organization", on_delete=models.PROTECT, related_name="sign_in_policy"
    )
    local_password_disabled = models.BooleanField(
        default=False, help_text="SSO is mandatory: refuse password sign-in for this organisation's people."
    )
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "sign-in policies"

    def __str__(self) -> str:
        return f"Sign-in policy of {self.organization}"


class SamlAssertionUse(models.Model):
    """Each SAML assertion id that signed someone in, kept until the assertion expires: the same
    assertion presented again is a replay and is refused."""

    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="+")
    assertion_id = models.CharField(max_length=255)
    used_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "assertion_id"], name="accounts_saml_assertion_once")
        ]

    def __str__(self) -> str:
        return self.assertion_id
