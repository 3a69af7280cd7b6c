"""The team boundary in Django admin, shared by every team-owned ModelAdmin."""
from django.contrib import admin
from django.db import models

from .models import Team
from .services.teams import team_for_user


class TeamScopedAdmin(admin.ModelAdmin):
    """Superusers see every team; other staff see and can pick only their own team's rows."""

    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        team = team_for_user(request.user)
        return qs.filter(team=team) if team else qs.none()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            team = team_for_user(request.user)
            model = db_field.related_model
            if model is Team:
                kwargs["queryset"] = Team.objects.filter(pk=getattr(team, "pk", None))
            elif any(f.name == "team" for f in model._meta.get_fields()):
                kwargs["queryset"] = model._default_manager.filter(team=team)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
