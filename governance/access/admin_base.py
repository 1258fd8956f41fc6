"""What every governed ModelAdmin is built on: the decision point answers every question.

``GovernedModelAdmin`` filters ``get_queryset`` with ``restrict``, answers
``has_*_permission(request, obj)`` with ``decide`` (Django's defaults ignore ``obj``), turns off
``delete_selected`` and routes every write to a service, showing a service's refusal as a message
instead of an error page. Apps register their admins on Django's default site, which is the
control panel (``governance.admin_site``); only governed admins stay on it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models
from django.http import HttpResponseRedirect

from governance.access.decision import decide
from governance.access.queries import restrict
from governance.core.forms import IdentifierEmailField, StorableJSONField
from governance.core.resources import resource_for


class GovernedModelAdmin(admin.ModelAdmin):
    """Configuration plus delegation: permissions from the decision point, writes via services.

    Subclasses implement ``service_save`` and, when deletion is allowed, ``service_delete``.
    """

    actions = None  # no delete_selected, no bulk action bypassing the services
    show_facets = admin.ShowFacets.NEVER  # facet counts are a COUNT per choice: too slow at scale
    # The text rules of governance.core.text on every form the admin builds from a model: e-mail
    # addresses are identifiers (NFKC, no invisible characters), JSON is walked for NUL and
    # unpaired surrogates. (Character fields already refuse NUL; a form post cannot carry a
    # surrogate.) A subclass setting overrides of its own starts from these ({**GovernedModelAdmin
    # .formfield_overrides, ...}).
    formfield_overrides = {
        models.EmailField: {"form_class": IdentifierEmailField},
        models.JSONField: {"form_class": StorableJSONField},
    }

    def _action(self, verb: str) -> str | None:
        resource = resource_for(self.model)
        return resource.action_for(verb) if resource else None

    def _allows(self, request, verb: str, obj=None) -> bool:
        action = self._action(verb)
        return action is not None and decide(request.user, action, obj).allowed

    def get_queryset(self, request):
        action = self._action("view")
        queryset = super().get_queryset(request)
        return restrict(queryset, request.user, action) if action else queryset.none()

    def has_module_permission(self, request) -> bool:
        return self._allows(request, "view")

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allows(request, "view", obj)

    def has_add_permission(self, request) -> bool:
        return self._allows(request, "add")

    def has_change_permission(self, request, obj=None) -> bool:
        return self._allows(request, "change", obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._allows(request, "delete", obj)

    def save_model(self, request, obj, form, change) -> None:
        saved = self.service_save(request, obj, form, change)
        if saved is not None and saved is not obj:
            # The admin goes on with ``obj`` (log entry, message, redirect): make it the saved row.
            for model_field in saved._meta.concrete_fields:
                setattr(obj, model_field.attname, getattr(saved, model_field.attname))
            obj._state.adding = False
            obj._state.db = saved._state.db
            obj._state.fields_cache = dict(saved._state.fields_cache)

    def delete_model(self, request, obj) -> None:
        self.service_delete(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        raise PermissionDenied("Bulk deletion is disabled for governed records.")

    def service_save(self, request, obj, form, change):
        raise PermissionDenied(f"{self.model._meta.verbose_name} cannot be changed here.")

    def service_delete(self, request, obj) -> None:
        raise PermissionDenied(f"{self.model._meta.verbose_name} cannot be deleted here.")

    # A service may still refuse at save time (a race, or a rule the form could not see).
    # Nothing was written: show why and send the user back to the form.
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            return self._refused(request, error)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as error:
            return self._refused(request, error)

    def _refused(self, request, error: ValidationError):
        for message in error.messages:
            messages.error(request, message)
        return HttpResponseRedirect(request.get_full_path())


class ActorFormMixin:
    """Hand the signed-in user to the admin form as ``actor``."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change, **kwargs)

        class BoundForm(base):
            def __init__(self, *args, **form_kwargs):
                super().__init__(*args, actor=request.user, **form_kwargs)

        return BoundForm


class ReadOnlyModelAdmin(GovernedModelAdmin):
    """For records nobody edits in the control panel (roles, ledger events)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInlineMixin:
    """Inline rows shown for reference only: nobody adds, edits or deletes them from the parent's
    page (their changes are services of their own)."""

    can_delete = False
    extra = 0

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
