"""The portal's URLs plus one view that fails while holding a credential's value (for the canary test)."""

from django.urls import path

from governance.urls import urlpatterns as portal_urlpatterns


def failing_view(request, credential_id):
    from workflows.credentials.services import credential_value_resolve

    value = credential_value_resolve(credential_id=credential_id)  # in the frame's locals when it fails
    raise RuntimeError(f"upstream refused the call made with {value}")


urlpatterns = [*portal_urlpatterns, path("canary-fails/<uuid:credential_id>/", failing_view)]
