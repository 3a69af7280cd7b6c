"""Authentication backend: Django's ModelBackend, loading the signed-in user with their team.

Every page needs the user's Membership and Team (``outreach.services.teams.team_for_user``); reading
them in the same query as the user, once per request, keeps list and detail pages at a flat query
count (issue 12: ≤ 8 per page).
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class TeamModelBackend(ModelBackend):
    """ModelBackend whose ``get_user(user_id)`` (used by the session middleware on every request)
    selects the user's ``membership`` and its ``team`` in one query. Returns the user or None."""

    def get_user(self, user_id):
        User = get_user_model()
        try:
            user = User._default_manager.select_related("membership__team").get(pk=user_id)
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None
