"""The AI register in the control panel: providers and models (read-only, with the workflows and
versions that use each model), the proposals that change them with their decision page, and the
bias tests. Every change is a proposal that another compliance officer decides."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.http import urlencode

from governance.access.admin_base import GovernedModelAdmin, ReadOnlyModelAdmin
from governance.access.decision import decide
from workflows.ai import bias, posture, selectors, services
from workflows.ai.forms import (
    BiasTestForm,
    BlockChangeForm,
    ModelChangeForm,
    ProviderChangeForm,
    RegisterDecisionForm,
)
from workflows.ai.models import (
    AIModel,
    AIProvider,
    BiasTest,
    RegisterChange,
    RegisterChangeStatus,
    RegisterEntry,
    RegisterOperation,
)


def _may_manage(request) -> bool:
    return decide(request.user, "ai_register.manage", request.user.organization).allowed


def _propose_url(**params) -> str:
    return reverse("admin:workflows_registerchange_add") + "?" + urlencode(params)


def _review_due(entry) -> str:
    due = selectors.review_due_on(entry)
    if due is None:
        return "never reviewed: refused"
    late = " — overdue: refused" if due < timezone.now().date() else ""
    return f"{due.isoformat()}{late}"


class RegisterListMixin:
    """The register's lists and pages offer the proposals (to those who may make them)."""

    change_list_template = "admin/workflows/ai_register/change_list.html"
    change_form_template = "admin/workflows/ai_register/change_form.html"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        context = dict(extra_context or {})
        entry = self.get_object(request, object_id)
        if entry is not None and _may_manage(request):
            context["propose_links"] = self.proposals(entry)
        return super().change_view(request, object_id, form_url, context)

    def changelist_view(self, request, extra_context=None):
        context = dict(extra_context or {})
        if _may_manage(request):
            context["propose_url"] = _propose_url(entry=self.entry, operation=RegisterOperation.CREATE)
            context["propose_label"] = f"Propose a new {self.entry}…"
        return super().changelist_view(request, context)


@admin.register(AIProvider)
class AIProviderAdmin(RegisterListMixin, ReadOnlyModelAdmin):
    """The organisation's AI providers; a change is proposed, never typed in here."""

    entry = RegisterEntry.PROVIDER
    list_display = [
        "slug",
        "name",
        "kind",
        "region_list",
        "retention_days",
        "trains_on_customer_data",
        "dpa_on_file",
        "review_due",
    ]
    list_filter = ["kind", "trains_on_customer_data", "dpa_on_file"]
    fields = [
        "slug",
        "name",
        "kind",
        "integration_slug",
        "region_list",
        "retention_days",
        "trains_on_customer_data",
        "contract_reference",
        "dpa_on_file",
        "last_reviewed_on",
        "review_every_days",
        "review_due",
        "model_list",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(organization_id=request.user.organization_id)

    @admin.display(description="regions")
    def region_list(self, provider: AIProvider) -> str:
        return ", ".join(provider.regions or []) or "none"

    @admin.display(description="review due")
    def review_due(self, provider: AIProvider) -> str:
        return _review_due(provider)

    @admin.display(description="models")
    def model_list(self, provider: AIProvider) -> str:
        rows = [
            (reverse("admin:workflows_aimodel_change", args=[m.pk]), m.slug, m.get_status_display())
            for m in provider.models.all()
        ]
        return format_html_join(", ", '<a href="{}">{}</a> ({})', rows) or "none"

    def proposals(self, provider: AIProvider) -> list[tuple[str, str]]:
        return [
            (_propose_url(entry="provider", operation="update", provider=provider.pk), "Propose a change…"),
            (_propose_url(entry="model", operation="create", provider=provider.pk), "Propose a model…"),
            (
                _propose_url(entry="provider", operation="block", provider=provider.pk),
                "Propose blocking its models…",
            ),
        ]


@admin.register(AIModel)
class AIModelAdmin(RegisterListMixin, ReadOnlyModelAdmin):
    """The organisation's AI models, each with the workflows and versions that name it."""

    entry = RegisterEntry.MODEL
    list_display = ["__str__", "model_id", "model_version", "status", "review_due"]
    list_filter = ["status"]
    list_select_related = ["provider"]
    fields = [
        "provider",
        "slug",
        "model_id",
        "model_version",
        "licence",
        "artefact_sha256",
        "status",
        "last_reviewed_on",
        "review_every_days",
        "review_due",
        "model_card",
        "used_by",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).filter(provider__organization_id=request.user.organization_id)

    @admin.display(description="review due")
    def review_due(self, model: AIModel) -> str:
        return _review_due(model)

    @admin.display(description="used by")
    def used_by(self, model: AIModel) -> str:
        rows = [
            (
                row["workflow"].name,
                row["workflow"].workspace.name,
                ", ".join(f"v{n}" for n in row["versions"]),
                " (active)" if row["active"] else "",
            )
            for row in selectors.model_used_by(model)
        ]
        return format_html_join("; ", "{} in {}: {}{}", rows) or "no workflow names it"

    def proposals(self, model: AIModel) -> list[tuple[str, str]]:
        return [
            (_propose_url(entry="model", operation="update", model=model.pk), "Propose a change…"),
            (_propose_url(entry="model", operation="block", model=model.pk), "Propose blocking it…"),
        ]


@admin.register(RegisterChange)
class RegisterChangeAdmin(GovernedModelAdmin):
    """Proposals: added here (the form follows ``?entry=&operation=&provider=&model=``), decided on
    their own page by another compliance officer."""

    list_display = ["__str__", "status", "proposed_by", "proposed_at", "decided_by", "decided_at"]
    list_filter = ["status", "entry", "operation"]
    list_select_related = ["provider", "model", "proposed_by", "decided_by"]
    change_form_template = "admin/workflows/registerchange/change_form.html"
    shown = [
        "entry",
        "operation",
        "provider",
        "model",
        "values",
        "reason",
        "status",
        "proposed_by",
        "proposed_at",
        "decided_by",
        "decided_at",
        "decision_comment",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(organization_id=request.user.organization_id)

    def get_readonly_fields(self, request, obj=None):
        return self.shown if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.shown if obj is not None else super().get_fields(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # decisions go through their own page, never through edits

    def _target(self, request) -> tuple[str, str, AIProvider | None, AIModel | None]:
        params = request.GET
        entry = params.get("entry") if params.get("entry") in RegisterEntry.values else RegisterEntry.PROVIDER
        operation = params.get("operation")
        operation = operation if operation in RegisterOperation.values else RegisterOperation.CREATE
        provider = model = None
        if str(params.get("provider", "")).isdigit():
            provider = selectors.providers_visible_to(request.user).filter(pk=params["provider"]).first()
        if str(params.get("model", "")).isdigit():
            model = selectors.models_visible_to(request.user).filter(pk=params["model"]).first()
            provider = model.provider if model is not None else provider
        return entry, operation, provider, model

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change, **kwargs)
        entry, operation, provider, model = self._target(request)
        if operation == RegisterOperation.BLOCK:
            kwargs["form"] = BlockChangeForm
        else:
            kwargs["form"] = ModelChangeForm if entry == RegisterEntry.MODEL else ProviderChangeForm
        base = super().get_form(request, obj, change, **kwargs)
        providers = selectors.providers_visible_to(request.user).filter(
            organization_id=request.user.organization_id
        )

        class BoundForm(base):
            def __init__(self, *args, **form_kwargs):
                super().__init__(*args, **form_kwargs)
                extra = {"providers": providers} if issubclass(base, ModelChangeForm) else {}
                self.setup(actor=request.user, operation=operation, provider=provider, model=model, **extra)

        return BoundForm

    def service_save(self, request, obj, form, change):
        entry = form.entry
        values = form.values() if form.value_fields else {}
        return services.register_change_propose(
            actor=request.user,
            organization=request.user.organization,
            entry=entry,
            operation=form.operation,
            reason=form.cleaned_data["reason"],
            values=values,
            provider=form.provider,
            model=form.model,
        )

    def response_add(self, request, obj, post_url_continue=None):
        messages.success(
            request, "Proposed: another compliance officer must approve it before it takes effect."
        )
        return HttpResponseRedirect(reverse("admin:workflows_registerchange_change", args=[obj.pk]))

    def get_urls(self):
        return [
            path(
                "<int:change_id>/decide/",
                self.admin_site.admin_view(self.decide_view),
                name="workflows_registerchange_decide",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        change = self.get_object(request, object_id)
        context = dict(extra_context or {})
        if change is not None:
            context["can_decide"] = (
                change.status == RegisterChangeStatus.PENDING
                and change.proposed_by_id != request.user.pk
                and _may_manage(request)
            )
            context["diff"] = _proposal_diff(change)
        return super().change_view(request, object_id, form_url, context)

    def decide_view(self, request, change_id: int):
        change = get_object_or_404(self.get_queryset(request), pk=change_id)
        if not _may_manage(request):
            raise PermissionDenied
        if change.proposed_by_id == request.user.pk:
            raise PermissionDenied("You proposed this change; another compliance officer must decide it.")
        form = RegisterDecisionForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                if form.cleaned_data["decision"] == "approve":
                    services.register_change_approve(
                        actor=request.user, change=change, comment=form.cleaned_data["comment"]
                    )
                    messages.success(request, f"Approved and applied: {change}.")
                else:
                    services.register_change_reject(
                        actor=request.user, change=change, comment=form.cleaned_data["comment"]
                    )
                    messages.success(request, f"Rejected: {change}.")
                return HttpResponseRedirect(
                    reverse("admin:workflows_registerchange_change", args=[change.pk])
                )
            except ValidationError as error:
                for field, errors in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Decide: {change}",
            "change": change,
            "form": form,
            "diff": _proposal_diff(change),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/workflows/registerchange/decide.html", context)


def _proposal_diff(change: RegisterChange) -> list[tuple[str, object, object]]:
    """(field, now, proposed) of each field the proposal changes."""
    if change.operation == RegisterOperation.BLOCK:
        return [("status", "as registered", "blocked")]
    current: dict = {}
    if change.operation == RegisterOperation.UPDATE and change.status == RegisterChangeStatus.PENDING:
        if change.entry == RegisterEntry.MODEL and change.model_id:
            current = services.model_state(change.model)
        elif change.provider_id:
            current = services.provider_state(change.provider)
    return [
        (name, current.get(name, "—"), value)
        for name, value in change.values.items()
        if current.get(name) != value
    ]


@admin.register(BiasTest)
class BiasTestAdmin(GovernedModelAdmin):
    """Bias tests of models in workflows that decide about people: recorded, never edited."""

    form = BiasTestForm
    list_display = [
        "workflow",
        "provider",
        "model",
        "metric",
        "value",
        "threshold",
        "passed",
        "tested_on",
        "valid_until",
        "reviewer",
    ]
    list_filter = ["passed", "metric"]
    list_select_related = ["workflow", "reviewer"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change, **kwargs)

        class BoundForm(base):
            def __init__(self, *args, **form_kwargs):
                super().__init__(*args, actor=request.user, **form_kwargs)

        return BoundForm

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "workflow",
            "provider",
            "model",
            "model_version",
            "dataset_reference",
            "protected_attributes",
            "metric",
            "value",
            "threshold",
            "passed",
            "reviewer",
            "tested_on",
            "valid_until",
            "notes",
        ]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def service_save(self, request, obj, form, change):
        data = form.cleaned_data
        return bias.bias_test_record(
            actor=request.user,
            workflow=data["workflow"],
            provider=data["provider"],
            model=data["model"],
            model_version=data.get("model_version") or "",
            dataset_reference=data["dataset_reference"],
            protected_attributes=data["protected_attributes"],
            metric=data["metric"],
            value=data["value"],
            threshold=data["threshold"],
            tested_on=data["tested_on"],
            notes=data.get("notes") or "",
        )


posture.register()  # the register's row of the control panel's posture table
