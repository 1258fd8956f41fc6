"""User accounts (with sign-in lockouts) and conditional access in the control panel (platform
administrators, own organisation only)."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts import mfa, services
from accounts.conditional import POLICY_FIELDS, cidr_list_clean, conditional_access_policy_save
from accounts.lockout import account_failures, identifier_digest, locked_digests, user_sign_in_unlock
from accounts.models import ConditionalAccessPolicy, User, UserSession
from accounts.sessions import user_sessions_end_all
from governance.access.admin_base import ActorFormMixin, GovernedModelAdmin
from governance.access.decision import decide


class UserForm(forms.ModelForm):
    """E-mail and display name; passwords are set by their owner (or SSO), never typed by an admin."""

    class Meta:
        model = User
        fields = [
            "email",
            "display_name",
            "is_active",
            "region",
            "department",
            "manager",
            "security_training_expires_on",
        ]

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).strip().lower()
        if User.objects.filter(email=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("An account with this e-mail address exists already.")
        return email

    def validate_unique(self):
        # clean_email gives the clearer message for the one constraint a form can break.
        pass


class UnlockForm(forms.Form):
    """Unlocking an account; the address its attempts came from may be unlocked with it."""

    address = forms.GenericIPAddressField(
        required=False,
        unpack_ipv4=True,
        help_text="Optional: also unlock sign-in from this address (locked after too many failures from it).",
    )


@admin.register(User)
class UserAdmin(GovernedModelAdmin):
    form = UserForm
    list_display = [
        "email",
        "display_name",
        "is_active",
        "last_login",
        "date_joined",
        "live_sessions",
        "sign_in",
        "mfa_status",
    ]
    list_filter = ["is_active"]
    search_fields = ["email", "display_name"]
    readonly_fields = ["last_login", "date_joined", "scim_external_id", "deprovisioned_at"]

    def get_fields(self, request, obj=None):
        fields = ["email", "display_name", "region", "department", "manager", "security_training_expires_on"]
        if obj is None:
            return fields
        return [*fields, "is_active", "last_login", "date_joined", "scim_external_id", "deprovisioned_at"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "manager":
            kwargs["queryset"] = User.objects.filter(
                organization_id=request.user.organization_id, is_active=True
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            user = services.user_create(
                actor=request.user,
                organization=request.user.organization,
                email=data["email"],
                display_name=data.get("display_name", ""),
            )
            profile = {
                name: data[name]
                for name in ("region", "department", "manager", "security_training_expires_on")
                if data.get(name)
            }
            return services.user_update(actor=request.user, user=user, **profile) if profile else user
        profile = {name: data[name] for name in services.USER_FIELDS if name in data}
        user = services.user_update(actor=request.user, user=obj, **profile)
        if "is_active" in data:
            user = services.user_set_active(actor=request.user, user=user, active=data["is_active"])
        return user

    def get_queryset(self, request):
        live = Count("sessions", filter=Q(sessions__ended_at__isnull=True))
        return super().get_queryset(request).annotate(live_session_count=live)

    @admin.display(description="sessions")
    def live_sessions(self, user) -> str:
        count = user.live_session_count
        if not count:
            return "—"
        url = reverse("admin:accounts_user_force_logout", args=[user.pk])
        return format_html('{} live · <a href="{}">Sign out everywhere…</a>', count, url)

    @admin.display(description="MFA")
    def mfa_status(self, user) -> str:
        url = reverse("admin:accounts_user_mfa_reset", args=[user.pk])
        return format_html('<a href="{}">Reset MFA…</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.force_logout_view)
        unlock = self.admin_site.admin_view(self.unlock_view)
        reset = self.admin_site.admin_view(self.mfa_reset_view)
        return [
            path("<int:user_id>/force-logout/", view, name="accounts_user_force_logout"),
            path("<int:user_id>/unlock-sign-in/", unlock, name="accounts_user_unlock"),
            path("<int:user_id>/mfa-reset/", reset, name="accounts_user_mfa_reset"),
            *super().get_urls(),
        ]

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        # One query for the page: which of its accounts are locked out now.
        digests = {user.pk: identifier_digest(user.email) for user in changelist.result_list}
        locked = locked_digests(list(digests.values()))
        for user in changelist.result_list:  # marked on this request's rows, not on the shared admin
            user.sign_in_locked = digests[user.pk] in locked
        return changelist

    @admin.display(description="sign-in")
    def sign_in(self, user) -> str:
        if not getattr(user, "sign_in_locked", False):
            return "—"
        url = reverse("admin:accounts_user_unlock", args=[user.pk])
        return format_html('locked out · <a href="{}">Unlock…</a>', url)

    def unlock_view(self, request, user_id):
        """Lift a sign-in lockout of the account, and optionally of an address (user.manage; recorded)."""
        user = get_object_or_404(self.get_queryset(request), pk=user_id)
        if not decide(request.user, "user.manage", user).allowed:
            raise PermissionDenied
        form = UnlockForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            cleared = user_sign_in_unlock(actor=request.user, user=user, address=form.cleaned_data["address"])
            messages.success(
                request, f"Sign-in of {user} is unlocked ({cleared} failed attempt record(s) cleared)."
            )
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Unlock sign-in of {user}",
            "target": user,
            "form": form,
            "failures": account_failures(user=user),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/unlock.html", context)

    def force_logout_view(self, request, user_id):
        """End every session of the user and revoke their API tokens (user.manage; recorded)."""
        user = get_object_or_404(self.get_queryset(request), pk=user_id)
        if not decide(request.user, "user.manage", user).allowed:
            raise PermissionDenied
        if request.method == "POST":
            ended = user_sessions_end_all(actor=request.user, user=user)
            messages.success(
                request, f"{user} is signed out everywhere ({ended} session(s)); API tokens revoked."
            )
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        live = UserSession.objects.filter(user=user, ended_at__isnull=True).order_by("-last_seen_at")
        context = {
            **self.admin_site.each_context(request),
            "title": f"Sign {user} out everywhere",
            "target": user,
            "live": live,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/force_logout.html", context)

    def mfa_reset_view(self, request, user_id):
        """Remove every MFA device of the user (lost phone); their next request leads to
        enrolment. Needs user.manage; recorded as ``mfa.reset``."""
        user = get_object_or_404(self.get_queryset(request), pk=user_id)
        if not decide(request.user, "user.manage", user).allowed:
            raise PermissionDenied
        if request.method == "POST":
            removed = mfa.mfa_reset(actor=request.user, user=user)
            messages.success(
                request, f"Two-step verification of {user} is reset ({removed} device(s) removed)."
            )
            return HttpResponseRedirect(reverse("admin:accounts_user_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Reset two-step verification of {user}",
            "target": user,
            "devices": mfa.second_factors_of(user),
            "backup_left": mfa.backup_codes_remaining(user),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/accounts/mfa_reset.html", context)


class NetworkListField(forms.CharField):
    """CIDR networks, one per line (IPv4 or IPv6); every malformed line is named in the error."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 50, "spellcheck": "false"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value) -> list[str]:
        return cidr_list_clean(super().to_python(value) or "")


class ConditionalAccessPolicyForm(forms.ModelForm):
    """The organisation's conditional-access rules and risk weights."""

    allowed_networks = NetworkListField(
        required=False,
        help_text="When set, sign-in only from these networks (CIDR, one per line, e.g. 192.0.2.0/24 or "
        "2001:db8::/32).",
    )
    denied_networks = NetworkListField(required=False, help_text="Never sign-in from these networks.")

    class Meta:
        model = ConditionalAccessPolicy
        fields = list(POLICY_FIELDS)

    def __init__(self, *args, actor, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            self.instance.organization = actor.organization

    def clean(self):
        data = super().clean()
        step_up, deny = data.get("step_up_score"), data.get("deny_score")
        if step_up is not None and deny is not None and step_up > deny:
            self.add_error("step_up_score", "The step-up score cannot be above the deny score.")
        return data

    def validate_unique(self) -> None:
        pass  # one policy per organisation: the service says so plainly


@admin.register(ConditionalAccessPolicy)
class ConditionalAccessPolicyAdmin(ActorFormMixin, GovernedModelAdmin):
    """Conditional access of the administrator's organisation (organization.manage); never deleted,
    switched off with *enabled* instead."""

    form = ConditionalAccessPolicyForm
    list_display = [
        "organization",
        "enabled",
        "device_compliance",
        "step_up_score",
        "deny_score",
        "updated_at",
    ]
    list_select_related = ["organization"]
    fieldsets = [
        (None, {"fields": ["enabled"]}),
        ("Networks", {"fields": ["allowed_networks", "denied_networks"]}),
        ("Device", {"fields": ["device_compliance"]}),
        (
            "Risk score",
            {
                "fields": [
                    "new_network_weight",
                    "new_country_weight",
                    "recent_failure_weight",
                    "impossible_travel_weight",
                    "travel_window_minutes",
                    "step_up_score",
                    "deny_score",
                ]
            },
        ),
    ]

    def service_save(self, request, obj, form, change):
        organization = obj.organization if change else request.user.organization
        if not change and ConditionalAccessPolicy.objects.filter(organization=organization).exists():
            raise ValidationError(
                "Your organisation has a conditional-access policy already; change that one."
            )
        values = {name: form.cleaned_data[name] for name in POLICY_FIELDS if name in form.cleaned_data}
        return conditional_access_policy_save(actor=request.user, organization=organization, **values)


# SCIM tokens and groups, and single sign-on (identity providers, mappings, sign-in policy),
# are registered from their own modules.
from accounts import scim_admin, sso_admin  # noqa: E402, F401
