"""Teams and their users."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from ..models import Membership, Team


def team_create_with_owner(*, team_name: str, username: str, email: str, password: str) -> tuple[Team, "object"]:
    """Create a team and its first user (role owner). Returns (team, user).

    Raises ValidationError when the team name or username is taken or the password is empty.
    """
    User = get_user_model()
    team_name = team_name.strip()
    if not team_name:
        raise ValidationError("Enter a team name.")
    if not password:
        raise ValidationError("Enter a password for the first user.")
    if Team.objects.filter(name__iexact=team_name).exists():
        raise ValidationError(f"A team named {team_name!r} already exists.")
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"A user named {username!r} already exists.")
    with transaction.atomic():
        team = Team.objects.create(name=team_name)
        user = User.objects.create_user(username=username, email=email, password=password)
        Membership.objects.create(user=user, team=team, role=Membership.Role.OWNER)
    return team, user


def team_add_member(*, team: Team, username: str, email: str, password: str) -> "object":
    """Create a user in ``team`` (role member). Returns the user; raises ValidationError if taken."""
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise ValidationError(f"A user named {username!r} already exists.")
    with transaction.atomic():
        user = User.objects.create_user(username=username, email=email, password=password)
        Membership.objects.create(user=user, team=team)
    return user


def team_for_user(user) -> Team | None:
    """The user's team, or None for a user without one (e.g. a bare superuser)."""
    membership = getattr(user, "membership", None) if user.is_authenticated else None
    return membership.team if membership else None
