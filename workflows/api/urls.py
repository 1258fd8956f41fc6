from rest_framework.routers import SimpleRouter

from workflows.api import views

router = SimpleRouter()
router.register("workflows", views.WorkflowViewSet, basename="api-workflow")
router.register("changes", views.ChangeViewSet, basename="api-change")
router.register("integration-requests", views.IntegrationRequestViewSet, basename="api-integration-request")
router.register("credentials", views.CredentialViewSet, basename="api-credential")
router.register("service-accounts", views.ServiceAccountViewSet, basename="api-service-account")

urlpatterns = router.urls
