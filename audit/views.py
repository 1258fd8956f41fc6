"""The ledger's public material (key, latest tree head) and the download of evidence packages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from audit.canonical import format_time
from audit.models import SignedTreeHead
from audit.signing import key_id_of, load_signing_key, public_key_pem
from governance.access.decision import decide


@require_GET
def public_key(request: HttpRequest) -> HttpResponse:
    """The Ed25519 public key that signs tree heads (PEM), with its key id in a header."""
    key = load_signing_key().public_key()
    response = HttpResponse(public_key_pem(key), content_type="application/x-pem-file")
    response["X-Ledger-Key-Id"] = key_id_of(key)
    return response


@login_required
@require_GET
def latest_tree_head(request: HttpRequest) -> JsonResponse:
    """The latest signed tree head, for those who may read the ledger."""
    if not decide(request.user, "audit.view").allowed:
        return JsonResponse({"detail": "You may not read the audit ledger."}, status=403)
    head = SignedTreeHead.objects.order_by("-number").first()
    if head is None:
        return JsonResponse({"detail": "No tree head has been signed yet."}, status=404)
    return JsonResponse(
        {
            "number": head.number,
            "tree_size": head.tree_size,
            "root_hash": bytes(head.root_hash).hex(),
            "issued_at": format_time(head.issued_at),
            "key_id": head.key_id,
            "signature": bytes(head.signature).hex(),
        }
    )
