"""The signed-in person's own pages: their sessions, each of which they can end, and their API
tokens, each of which they can revoke."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from knox.models import AuthToken

from accounts.forms import SessionEndForm
from accounts.models import UserSession
from accounts.services import api_token_revoke
from accounts.sessions import session_end, session_ref_of


@login_required
@require_http_methods(["GET", "POST"])
def sessions(request: HttpRequest) -> HttpResponse:
    """Your sessions — where and when each started, when it was last seen — and a button to end
    any of them (ending one elsewhere signs that browser out at its next request)."""
    mine = UserSession.objects.filter(user=request.user)
    if request.method == "POST":
        form = SessionEndForm(request.POST)
        if not form.is_valid():  # not a number: said on the page, as any other bad input
            for problems in form.errors.values():
                for problem in problems:
                    messages.error(request, problem)
            return HttpResponseRedirect(reverse("account-sessions"))
        row = get_object_or_404(mine, pk=form.cleaned_data["session"])
        session_end(actor=request.user, row=row)
        messages.success(request, "The session has ended.")
        return HttpResponseRedirect(reverse("account-sessions"))
    current = session_ref_of(request.session.session_key) if request.session.session_key else ""
    context = {
        "live": list(mine.filter(ended_at__isnull=True).order_by("-last_seen_at")),
        "ended": list(mine.filter(ended_at__isnull=False).order_by("-ended_at")[:20]),
        "current": current,
    }
    return render(request, "accounts/sessions.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    """Your API tokens — by their public key prefix, when made and until when — and a button to
    revoke any of them (they also end with a password change or reset)."""
    mine = AuthToken.objects.filter(user=request.user)
    if request.method == "POST":
        key = str(request.POST.get("token", ""))[:64]
        if not api_token_revoke(actor=request.user, user=request.user, token_key=key):
            messages.error(request, "No such token of yours; nothing was revoked.")
        else:
            messages.success(request, "The token is revoked.")
        return HttpResponseRedirect(reverse("account-api-tokens"))
    tokens = list(mine.order_by("-created").values("token_key", "created", "expiry"))
    return render(request, "accounts/api_tokens.html", {"tokens": tokens})


def email_managed_elsewhere(request: HttpRequest, key: str | None = None) -> HttpResponse:
    """Sign-in addresses are changed by administrators, SCIM or the identity provider, never by
    the person on a self-service page (it would take any address unverified): 404, with the reason."""
    raise Http404("Sign-in addresses are managed by your administrator or your identity provider.")
