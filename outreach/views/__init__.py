"""The sales UI. Views are thin: they check input with a form, call one service (writes) or
selector (reads), and render. Every view is scoped to the user's team (see ``common``)."""
from .contacts import (contact_company_suggestions, contact_compose, contact_export, contact_create, contact_delete, contact_detail,
                       contact_edit, contact_list, contact_timeline)
from .bulk_jobs import bulk_job_cancel_view, bulk_job_detail, bulk_job_list_view, bulk_job_progress
from .leads import lead_create, lead_edit, lead_export, lead_list
from .mailboxes import mailbox_connect, mailbox_delete, mailbox_edit, mailbox_list, mailbox_test
from .provider_accounts import (mailbox_connect_provider, provider_account_create, provider_account_delete,
                                provider_account_edit, provider_account_list)
from .members import invitation_accept_view, member_invite, member_list
from .sent_messages import message_action, message_detail, message_list, message_status, message_timeline_card

__all__ = [
    "bulk_job_cancel_view", "bulk_job_detail", "bulk_job_list_view", "bulk_job_progress",
    "contact_company_suggestions", "contact_compose", "contact_export", "lead_export", "contact_create", "contact_delete", "contact_detail", "contact_edit", "contact_list",
    "contact_timeline", "lead_create", "lead_edit", "lead_list", "mailbox_connect", "mailbox_delete",
    "mailbox_edit", "mailbox_list", "mailbox_test", "message_action", "message_detail", "message_list", "message_status",
    "message_timeline_card",
    "mailbox_connect_provider", "provider_account_create", "provider_account_delete", "provider_account_edit",
    "provider_account_list", "member_list", "member_invite", "invitation_accept_view",
]
