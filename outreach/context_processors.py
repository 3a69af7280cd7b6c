"""Template context for every page: the signed-in user's team (for the navigation bar)."""
from .services.teams import team_for_user, user_is_team_admin


def team(request) -> dict:
    """{"current_team": the user's Team or None (cached on the request like ``views.common.get_team``),
    "is_team_admin": whether the user may manage mailboxes, provider accounts and members}."""
    user = getattr(request, "user", None)
    if not hasattr(request, "_outreach_team"):
        request._outreach_team = team_for_user(user) if user is not None else None
    is_admin = bool(user is not None and user.is_authenticated and (user.is_superuser or user_is_team_admin(user)))
    return {"current_team": request._outreach_team, "is_team_admin": is_admin}
