"""Helpers every view uses: the request's team, team-scoped lookups, service errors onto forms."""
from __future__ import annotations

from functools import wraps
from typing import TypeVar

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model
from django.forms import Form
from django.http import HttpRequest, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404

from ..models import Team
from ..services.teams import team_for_user, user_is_team_admin

M = TypeVar("M", bound=Model)

NO_TEAM_MESSAGE = ("Your account is not a member of any team, so there is nothing to show here. "
                   "Ask your team's owner (or an administrator) to add you to a team.")


def get_team(request: HttpRequest) -> Team:
    """The signed-in user's team (cached on the request).

    Raises PermissionDenied, rendered by templates/403.html with an explanation, for a user without one.
    """
    if not hasattr(request, "_outreach_team"):
        request._outreach_team = team_for_user(request.user)
    if request._outreach_team is None:
        raise PermissionDenied(NO_TEAM_MESSAGE)
    return request._outreach_team


TEAM_ADMIN_MESSAGE = ("Only your team's owners and admins can do this (connect, edit or delete mailboxes and "
                      "provider accounts, manage members). Ask one of them.")


def require_team_admin(request: HttpRequest) -> Team:
    """The request's team if the user is one of its owners/admins (or a superuser); else
    PermissionDenied (403 page with :data:`TEAM_ADMIN_MESSAGE`)."""
    team = get_team(request)
    if not (request.user.is_superuser or user_is_team_admin(request.user)):
        raise PermissionDenied(TEAM_ADMIN_MESSAGE)
    return team


def team_admin_required(view):
    """View decorator: only team owners/admins (:func:`require_team_admin`). Marks the view
    ``team_admin_only = True`` so tests can list every such URL."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        require_team_admin(request)
        return view(request, *args, **kwargs)

    wrapped.team_admin_only = True
    return wrapped


def team_object_or_404(model: type[M], request: HttpRequest, pk, *, queryset=None) -> M:
    """``model``'s row ``pk`` if it belongs to the request's team, else Http404 (never 403: another
    team's ids must look like ids that do not exist). ``queryset`` narrows further (select_related…)."""
    team = get_team(request)
    qs = queryset if queryset is not None else model.objects.all()
    return get_object_or_404(qs.filter(team=team), pk=pk)


def add_service_errors(form: Form, err: ValidationError) -> None:
    """Put a service's ValidationError onto ``form``: keys that are form fields go inline, others
    (and message-only errors) become non-field errors."""
    if hasattr(err, "error_dict"):
        for field, errors in err.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, err.messages)


def method_not_allowed(request: HttpRequest, allowed: tuple[str, ...] = ("GET", "HEAD")) -> HttpResponseNotAllowed | None:
    """A 405 response when ``request.method`` is not ``allowed``, else None.

    Read-only views call it *after* their team-scoped lookup, so another team's id answers 404
    to every method instead of revealing that the URL exists.
    """
    if request.method not in allowed:
        return HttpResponseNotAllowed([m for m in allowed if m != "HEAD"])
    return None
