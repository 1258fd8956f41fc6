"""``/scim/v2/``: the SCIM endpoints an identity provider is given (see docs/identity.md)."""

from django.urls import path, re_path

from accounts.scim import views

urlpatterns = [
    path("ServiceProviderConfig", views.DiscoveryView.as_view(document="config"), name="scim-config"),
    path("ResourceTypes", views.DiscoveryView.as_view(document="types"), name="scim-resource-types"),
    re_path(
        r"^ResourceTypes/(?P<name>[^/]+)$",
        views.DiscoveryView.as_view(document="types"),
        name="scim-resource-type",
    ),
    path("Schemas", views.DiscoveryView.as_view(document="schemas"), name="scim-schemas"),
    re_path(
        r"^Schemas/(?P<name>[^/]+)$", views.DiscoveryView.as_view(document="schemas"), name="scim-schema"
    ),
    path("Users", views.UsersView.as_view(), name="scim-users"),
    path("Users/<str:user_id>", views.UserView.as_view(), name="scim-user"),
    path("Groups", views.GroupsView.as_view(), name="scim-groups"),
    path("Groups/<str:group_id>", views.GroupView.as_view(), name="scim-group"),
]
