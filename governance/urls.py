"""URL map: the control panel, the builders' pages, sign-in and the API."""

from allauth.socialaccount import views as social_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import mfa_views
from accounts import views as account_views
from accounts.sso import views as sso_views
from audit import views as ledger_views
from audit.evidence import views as evidence_views
from governance import views
from governance.access import views as access_views
from governance.admin_site import site
from workflows.executions import hook_views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("oncall/", access_views.oncall, name="oncall"),
    path("workflows/", include("workflows.urls")),
    path("oncall/<int:override_id>/end/", access_views.oncall_end, name="oncall-end"),
    path("admin/", site.urls),
    path("ledger/public-key.pem", ledger_views.public_key, name="ledger-public-key"),
    path("ledger/tree-head", ledger_views.latest_tree_head, name="ledger-tree-head"),
    path("evidence/<str:token>/download", evidence_views.evidence_download, name="evidence-download"),
    path("accounts/sessions/", account_views.sessions, name="account-sessions"),
    path("accounts/api-tokens/", account_views.api_tokens, name="account-api-tokens"),
    path("accounts/mfa/", mfa_views.devices, name="account-mfa"),
    path("accounts/mfa/enrol/", mfa_views.enrol, name="account-mfa-enrol"),
    path("accounts/mfa/verify/", mfa_views.verify, name="account-mfa-verify"),
    path("accounts/mfa/backup-codes/", mfa_views.backup_codes, name="account-mfa-backup-codes"),
    path(
        "accounts/mfa/devices/<str:kind>/<int:device_id>/remove/",
        mfa_views.device_remove,
        name="account-mfa-device-remove",
    ),
    path("accounts/mfa/webauthn/", include("accounts.webauthn_urls")),
    # A person's sign-in address is governed (the control panel, SCIM, single sign-on): allauth's
    # self-service address pages would let anyone swap it for an unverified one of their choice.
    path("accounts/email/", account_views.email_managed_elsewhere, name="account_email"),
    path(
        "accounts/confirm-email/",
        account_views.email_managed_elsewhere,
        name="account_email_verification_sent",
    ),
    re_path(
        r"^accounts/confirm-email/(?P<key>[-:\w]+)/$",
        account_views.email_managed_elsewhere,
        name="account_confirm_email",
    ),
    path("accounts/", include("allauth.account.urls")),
    # SCIM 2.0 for identity providers: SCIM-token authentication only (accounts/scim/views.py).
    path("scim/v2/", include("accounts.scim.urls")),
    # Single sign-on: /accounts/oidc/<slug>/login/(callback/) and /accounts/saml/<slug>/(acs|metadata|login)/
    path("accounts/oidc/<str:provider_id>/login/", sso_views.oidc_login, name="openid_connect_login"),
    path(
        "accounts/oidc/<str:provider_id>/login/callback/",
        sso_views.oidc_callback,
        name="openid_connect_callback",
    ),
    path("accounts/saml/<str:organization_slug>/login/", sso_views.saml_login, name="saml_login"),
    path("accounts/", include("allauth.socialaccount.providers.saml.urls")),
    path(
        "accounts/social/login/cancelled/", social_views.login_cancelled, name="socialaccount_login_cancelled"
    ),
    path("accounts/social/login/error/", social_views.login_error, name="socialaccount_login_error"),
    # Signed webhooks that trigger workflows (workflows/executions/hooks.py).
    path("hooks/<int:workspace_id>/<path:hook_path>", hook_views.webhook_receive, name="webhook"),
    path("api/v1/", include("governance.tenancy.api.urls")),
    path("api/v1/", include("workflows.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

handler404 = "governance.views.page_not_found"
