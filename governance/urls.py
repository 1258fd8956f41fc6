"""URL map: the control panel, the builders' pages, sign-in and the API."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import mfa_views
from accounts import views as account_views
from audit import views as ledger_views
from governance import views
from governance.access import views as access_views
from governance.admin_site import site

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("oncall/", access_views.oncall, name="oncall"),
    path("workflows/", include("workflows.urls")),
    path("oncall/<int:override_id>/end/", access_views.oncall_end, name="oncall-end"),
    path("admin/", site.urls),
    path("ledger/public-key.pem", ledger_views.public_key, name="ledger-public-key"),
    path("ledger/tree-head", ledger_views.latest_tree_head, name="ledger-tree-head"),
    path("evidence/<str:token>/download", ledger_views.evidence_download, name="evidence-download"),
    path("accounts/sessions/", account_views.sessions, name="account-sessions"),
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
    path("accounts/", include("allauth.account.urls")),
    # SCIM 2.0 for identity providers: SCIM-token authentication only (accounts/scim/views.py).
    path("scim/v2/", include("accounts.scim.urls")),
    path("api/v1/", include("governance.tenancy.api.urls")),
    path("api/v1/", include("workflows.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]
