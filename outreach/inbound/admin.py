"""Admin for inbound mail: read-only (the sync writes these rows), scoped to the operator's team."""
from django.contrib import admin

from ..admin_scoping import TeamScopedAdmin
from .models import InboundMessage


@admin.register(InboundMessage)
class InboundMessageAdmin(TeamScopedAdmin):
    list_display = ("subject", "from_email", "kind", "bounce_status", "mailbox", "team", "created_at")
    list_filter = ("team", "kind", "bounce_type")
    search_fields = ("subject", "from_email", "message_id", "bounce_recipient")
    list_select_related = ("mailbox", "team")
    exclude = ("html_body",)  # never rendered raw in admin; the sales UI shows it sanitised

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
