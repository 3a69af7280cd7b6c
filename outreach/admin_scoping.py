"""The team boundary and team roles in Django admin, shared by every ModelAdmin and inline.

A superuser sees every team. Any other staff user sees, and can pick in any form field or
autocomplete, only rows of their own team (a user without a team sees nothing):

- :func:`scope_to_team` narrows a queryset of any model to one team: Team itself, a User (the
  team's members), or any model with a ``team`` foreign key (Membership, Contact, ImportJob, …).
  Every foreign-key / many-to-many choice in every form goes through it, whatever its model.
- :class:`TeamScopedMixin` applies it to a ModelAdmin's or inline's queryset and choices. The
  autocomplete endpoint reads the *target* model's admin queryset, so it is scoped too.
- ``admin_role_required = True`` on a ModelAdmin lets only the team's owners/admins add, change
  or delete its rows (the same rule as the UI, :func:`outreach.services.teams.user_is_team_admin`).
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from .models import Team
from .services.teams import team_for_user, user_is_team_admin


def scope_to_team(queryset: models.QuerySet, team: Team | None) -> models.QuerySet:
    """``queryset`` narrowed to rows of ``team`` (``none()`` for no team).

    Team → that team; the user model → its members; a model with a ``team`` field → its rows;
    any other model (not team-owned, e.g. ContentType) is returned unchanged.
    """
    model = queryset.model
    if team is None and (model is Team or model is get_user_model() or _has_team_field(model)):
        return queryset.none()
    if model is Team:
        return queryset.filter(pk=team.pk)
    if model is get_user_model():
        return queryset.filter(membership__team=team)
    if _has_team_field(model):
        return queryset.filter(team=team)
    return queryset


def _has_team_field(model) -> bool:
    try:
        field = model._meta.get_field("team")
    except FieldDoesNotExist:
        return False
    return getattr(field, "related_model", None) is Team


def request_team(request) -> Team | None:
    """The request user's team (cached on the request)."""
    if not hasattr(request, "_outreach_team"):
        request._outreach_team = team_for_user(request.user)
    return request._outreach_team


class TeamScopedMixin:
    """Scopes the queryset and every related-object choice of a ModelAdmin or InlineModelAdmin."""

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return scope_to_team(qs, request_team(request))

    def _scope_choices(self, db_field, request, kwargs: dict) -> dict:
        if not request.user.is_superuser:
            base = kwargs.get("queryset")
            if base is None:
                base = db_field.remote_field.model._default_manager.get_queryset()
            kwargs["queryset"] = scope_to_team(base, request_team(request))
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, **self._scope_choices(db_field, request, kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(db_field, request, **self._scope_choices(db_field, request, kwargs))


class TeamScopedAdmin(TeamScopedMixin, admin.ModelAdmin):
    """Superusers see every team; other staff see and can pick only their own team's rows.

    Set ``admin_role_required = True`` for models only team owners/admins may write (mailboxes,
    provider accounts, memberships): members then get view-only pages.
    """

    admin_role_required = False

    def get_list_filter(self, request):
        """Related-field filters (team, owner, mailbox…) offer only values found in the scoped rows."""
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        scoped = []
        for entry in filters:
            if isinstance(entry, str) and "__" not in entry:
                try:
                    field = self.model._meta.get_field(entry)
                except FieldDoesNotExist:
                    field = None
                if field is not None and field.is_relation:
                    entry = (entry, admin.RelatedOnlyFieldListFilter)
            scoped.append(entry)
        return scoped

    def _may_write(self, request) -> bool:
        return (not self.admin_role_required or request.user.is_superuser
                or user_is_team_admin(request.user))

    def has_add_permission(self, request, *args, **kwargs):
        return super().has_add_permission(request, *args, **kwargs) and self._may_write(request)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_write(request)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_write(request)


class TeamScopedInline(TeamScopedMixin):
    """Mix into an InlineModelAdmin (before StackedInline/TabularInline) to scope its choices."""
