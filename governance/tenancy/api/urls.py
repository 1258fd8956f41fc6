from rest_framework.routers import SimpleRouter

from governance.tenancy.api import views

router = SimpleRouter()
router.register("workspaces", views.WorkspaceViewSet, basename="workspace")
router.register("memberships", views.MembershipViewSet, basename="membership")

urlpatterns = router.urls
