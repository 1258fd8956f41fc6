"""What every governed ModelAdmin is built on: the decision point answers every question.

``GovernedModelAdmin`` filters ``get_queryset`` with ``restrict``, answers
``has_*_permission(request, obj)`` with ``decide`` (Django's defaults ignore ``obj``), turns off
``delete_selected`` and routes every write to a service, showing a service's refusal as a message
instead of an error page. Apps register their admins on Django's default site, which is the
control panel (``governance.admin_site``); only governed admins stay on it.

Every list of other rows the control panel offers is built through the decision point too
(``visible_choices``): the list filters on relations (``get_list_filter`` swaps Django's filters
for the governed ones below), the choices of every foreign-key and many-to-many form field
(``get_field_queryset``) and the autocomplete answers (``GovernedAutocompleteJsonView``). A model
the decision point does not govern offers nothing.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.admin.views.autocomplete import AutocompleteJsonView
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.db import models
from django.http import HttpResponseRedirect

from governance.access.actions import get_action
from governance.access.decision import decide, list_reach
from governance.access.queries import restrict
from governance.core.forms import IdentifierEmailField, StorableJSONField
from governance.core.resources import resource_for


def visible_choices(request, model: type[models.Model], admin_site=None) -> models.QuerySet:
    """The rows of ``model`` the signed-in user may see, to offer in a filter or a choice list.

    When ``model`` has an admin on the control panel, its ``get_queryset`` answers (a governed
    admin: the decision point's visible-to queryset, narrowed as that admin narrows it, e.g.
    shipped and own policies, or an app's own visibility selector for the secrets store).
    Otherwise the model's resource answers with ``restrict`` for its view action; a model without
    one offers nothing.
    """
    model = model._meta.concrete_model
    model_admin = (admin_site or admin.site)._registry.get(model)
    if isinstance(model_admin, GovernedModelAdmin):
        return model_admin.get_queryset(request)
    resource = resource_for(model)
    action = resource.action_for("view") if resource is not None else None
    if action is None:
        return model._default_manager.none()
    return restrict(model._default_manager.all(), request.user, action)


def _ordered(queryset: models.QuerySet, ordering) -> models.QuerySet:
    return queryset.order_by(*ordering) if ordering else queryset


class GovernedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A filter on a relation offering only the related rows the user may see."""

    def governed_choices(self, field, request, model_admin) -> models.QuerySet:
        queryset = visible_choices(request, field.related_model, model_admin.admin_site)
        limit = field.get_limit_choices_to() if hasattr(field, "get_limit_choices_to") else None
        return queryset.complex_filter(limit) if limit else queryset

    def field_choices(self, field, request, model_admin):
        ordering = self.field_admin_ordering(field, request, model_admin)
        queryset = _ordered(self.governed_choices(field, request, model_admin), ordering)
        target = getattr(getattr(field, "target_field", None), "attname", "pk")
        return [(getattr(row, target), str(row)) for row in queryset]


class GovernedRelatedOnlyFieldListFilter(GovernedRelatedFieldListFilter):
    """Like Django's related-only filter (the related rows the listed rows point to), among the
    rows the user may see."""

    def governed_choices(self, field, request, model_admin) -> models.QuerySet:
        pointed_to = (
            model_admin.get_queryset(request).distinct().values_list(f"{self.field_path}__pk", flat=True)
        )
        return super().governed_choices(field, request, model_admin).filter(pk__in=pointed_to)


class GovernedAllValuesFieldListFilter(admin.AllValuesFieldListFilter):
    """The distinct values of a field among the rows the list shows (Django's own filter reads
    every row of a related model when the field is reached through a relation)."""

    def __init__(self, field, request, params, model, model_admin, field_path):
        super().__init__(field, request, params, model, model_admin, field_path)
        rows = model_admin.get_queryset(request)
        self.lookup_choices = rows.distinct().order_by(field_path).values_list(field_path, flat=True)


_GOVERNED_FILTERS = {
    admin.RelatedFieldListFilter: GovernedRelatedFieldListFilter,
    admin.RelatedOnlyFieldListFilter: GovernedRelatedOnlyFieldListFilter,
    admin.AllValuesFieldListFilter: GovernedAllValuesFieldListFilter,
}


def governed_list_filter(model: type[models.Model], item):
    """``item`` of a ``list_filter`` with Django's filters that read other rows swapped for the
    governed ones; a custom filter class on a field must be governed already."""
    if isinstance(item, str):
        field = get_fields_from_path(model, item)[-1]
        if field.remote_field is not None or field.is_relation:
            return (item, GovernedRelatedFieldListFilter)
        if isinstance(field, models.BooleanField | models.DateField) or field.choices:
            return item  # a fixed list of values
        return (item, GovernedAllValuesFieldListFilter)
    if isinstance(item, tuple | list) and len(item) == 2 and isinstance(item[1], type):
        path, filter_class = item
        if filter_class in _GOVERNED_FILTERS:
            return (path, _GOVERNED_FILTERS[filter_class])
        if issubclass(filter_class, admin.RelatedFieldListFilter | admin.AllValuesFieldListFilter) and not (
            issubclass(filter_class, GovernedRelatedFieldListFilter | GovernedAllValuesFieldListFilter)
        ):
            raise ImproperlyConfigured(
                f"The list filter {filter_class.__name__} does not ask the decision point."
            )
    return item


class GovernedChoicesMixin:
    """Foreign-key and many-to-many form fields offer only the rows the user may see; a form or an
    admin that sets its own list narrows it further (``tests/governance/test_admin_tenant_clean.py``
    checks what every form offers)."""

    def get_field_queryset(self, db, db_field, request):
        queryset = visible_choices(request, db_field.remote_field.model, self.admin_site)
        if db is not None:
            queryset = queryset.using(db)
        ordering = ()
        related_admin = self.admin_site._registry.get(db_field.remote_field.model)
        if related_admin is not None:
            ordering = related_admin.get_ordering(request)
        return _ordered(queryset, ordering)


class GovernedModelAdmin(GovernedChoicesMixin, admin.ModelAdmin):
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
        if action is None:
            return False
        if obj is None and request.user.is_authenticated:
            # The page itself (a list, an add form): open to whoever may act on some kind of its
            # rows — a workspace's, or the organisation's own, which answer to their own action.
            # Asked of the roles alone (``list_reach``, as lists are): a page that is not offered
            # is not an attempt, and must not record a denial of the rows' own action.
            resource = resource_for(self.model)
            row_action = get_action(resource.organization_row_actions.get(action, "")) if resource else None
            if row_action is not None and list_reach(request.user, row_action).organization:
                return True
        return decide(request.user, action, obj).allowed

    def get_queryset(self, request):
        action = self._action("view")
        queryset = super().get_queryset(request)
        return restrict(queryset, request.user, action) if action else queryset.none()

    def get_list_filter(self, request):
        return [governed_list_filter(self.model, item) for item in super().get_list_filter(request)]

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


class GovernedAutocompleteJsonView(AutocompleteJsonView):
    """The control panel's autocomplete: only for a field a governed admin declares in its
    ``autocomplete_fields``, to a user who may add or change that admin's rows, answering with the
    rows the target admin lists (the decision point's) that the field may offer."""

    def process_request(self, request):
        term, model_admin, source_field, to_field_name = super().process_request(request)
        source_model = source_field.model._meta.concrete_model
        source_admin = self.admin_site._registry.get(source_model)
        if not isinstance(source_admin, GovernedModelAdmin):
            raise PermissionDenied
        if source_field.name not in source_admin.get_autocomplete_fields(request):
            raise PermissionDenied
        self.source_admin = source_admin
        return term, model_admin, source_field, to_field_name

    def has_perm(self, request, obj=None) -> bool:
        source = self.source_admin
        may_write = source.has_add_permission(request) or source.has_change_permission(request)
        return may_write and super().has_perm(request, obj)

    def get_queryset(self):
        offered = self.source_admin.get_field_queryset(None, self.source_field, self.request)
        return super().get_queryset().filter(pk__in=offered.values("pk"))


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


class ReadOnlyInlineMixin(GovernedChoicesMixin):
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
