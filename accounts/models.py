"""Users of the portal. E-mail is the login; nobody is a superuser."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.models import Device, ThrottlingMixin, TimestampMixin

from governance.regions import DataRegion


class UserManager(BaseUserManager):
    """Creates users; refuses to create superusers (platform administrators are a role)."""

    use_in_migrations = True

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
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def get_full_name(self) -> str:
        return self.display_name or self.email

    def get_short_name(self) -> str:
        return self.display_name or self.email

    # Permission questions always go through the authentication backends (and so through the
    # decision point); PermissionsMixin would answer True for superusers without asking.
    def has_perm(self, perm: str, obj=None) -> bool:
        from django.contrib.auth.models import _user_has_perm

        return self.is_active and _user_has_perm(self, perm, obj)

    def has_perms(self, perm_list, obj=None) -> bool:
        return all(self.has_perm(perm, obj) for perm in perm_list)

    def has_module_perms(self, app_label: str) -> bool:
        from django.contrib.auth.models import _user_has_module_perms

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
