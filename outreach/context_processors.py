"""Template context for every page: the signed-in user's team (for the navigation bar)."""
from .services.teams import team_for_user


def team(request) -> dict:
    """{"current_team": the user's Team or None} (cached on the request like ``views.common.get_team``)."""
    if not hasattr(request, "_outreach_team"):
        user = getattr(request, "user", None)
        request._outreach_team = team_for_user(user) if user is not None else None
    return {"current_team": request._outreach_team}
