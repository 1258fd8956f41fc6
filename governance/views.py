"""Pages outside the control panel: the signed-in home page and a health probe."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from governance.access.decision import decide
from governance.tenancy.selectors import my_memberships


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Your workspaces and roles, and a way into the control panel when a role opens it."""
    return render(
        request,
        "home.html",
        {
            "memberships": my_memberships(request.user),
            "can_open_control_panel": decide(request.user, "admin.access").allowed,
            "can_go_on_call": decide(request.user, "oncall.activate").allowed,
        },
    )


@require_GET
@cache_control(max_age=86400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers and tools ask for /favicon.ico whatever the page says: point them at the icon."""
    return redirect(static("favicon.svg"))


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database reachability, for load balancers. Reveals nothing else."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
