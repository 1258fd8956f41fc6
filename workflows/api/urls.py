"""The app's API: each sub-package's viewsets under /api/v1/."""

from rest_framework.routers import SimpleRouter

from workflows.changes.api import views as changes
from workflows.credentials.api import views as credentials
from workflows.executions.api import views as executions
from workflows.integrations.api import views as integrations
from workflows.service_accounts.api import views as service_accounts

router = SimpleRouter()
router.register("workflows", changes.WorkflowViewSet, basename="api-workflow")
router.register(
    r"workflows/(?P<id>[0-9]+)/executions",
    executions.WorkflowExecutionViewSet,
    basename="api-workflow-execution",
)
router.register("executions", executions.ExecutionViewSet, basename="api-execution")
router.register("changes", changes.ChangeViewSet, basename="api-change")
router.register(
    "integration-requests", integrations.IntegrationRequestViewSet, basename="api-integration-request"
)
router.register("credentials", credentials.CredentialViewSet, basename="api-credential")
router.register("service-accounts", service_accounts.ServiceAccountViewSet, basename="api-service-account")

urlpatterns = router.urls
