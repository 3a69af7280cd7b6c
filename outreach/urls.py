"""URLs of the sales UI (names are relied on by other code and tests), login/logout and the admin."""
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.generic import RedirectView

from . import views
from .inbound.views import unsubscribe

#: The only URLs answered without signing in (each view is marked ``login_not_required``);
#: tests check that every other URL redirects to the login page.
PUBLIC_URL_NAMES = frozenset({"login", "invitation_accept", "unsubscribe"})

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", login_not_required(auth_views.LoginView.as_view(redirect_authenticated_user=True)), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", RedirectView.as_view(pattern_name="contact_list"), name="home"),
    # Contacts
    path("contacts/", views.contact_list, name="contact_list"),
    path("contacts/new/", views.contact_create, name="contact_create"),
    path("contacts/companies/", views.contact_company_suggestions, name="contact_company_suggestions"),
    path("contacts/export.csv", views.contact_export, name="contact_export"),
    path("contacts/<int:pk>/", views.contact_detail, name="contact_detail"),
    path("contacts/<int:pk>/edit/", views.contact_edit, name="contact_edit"),
    path("contacts/<int:pk>/delete/", views.contact_delete, name="contact_delete"),
    path("contacts/<int:pk>/compose/", views.contact_compose, name="contact_compose"),
    path("contacts/<int:pk>/timeline/", views.contact_timeline, name="contact_timeline"),
    path("contacts/<int:pk>/make-lead/", views.lead_create, name="lead_create"),
    # Leads
    path("leads/", views.lead_list, name="lead_list"),
    path("leads/export.csv", views.lead_export, name="lead_export"),
    path("leads/<int:pk>/edit/", views.lead_edit, name="lead_edit"),
    # Bulk jobs ("all N matching" bulk actions run in the background)
    path("bulk-jobs/", views.bulk_job_list_view, name="bulk_job_list"),
    path("bulk-jobs/<int:pk>/", views.bulk_job_detail, name="bulk_job_detail"),
    path("bulk-jobs/<int:pk>/progress/", views.bulk_job_progress, name="bulk_job_progress"),
    path("bulk-jobs/<int:pk>/cancel/", views.bulk_job_cancel_view, name="bulk_job_cancel"),
    # Mailboxes
    path("mailboxes/", views.mailbox_list, name="mailbox_list"),
    path("mailboxes/connect/", views.mailbox_connect, name="mailbox_connect"),
    path("mailboxes/connect/provider/", views.mailbox_connect_provider, name="mailbox_connect_provider"),
    path("mailboxes/test/", views.mailbox_test, name="mailbox_test"),
    path("mailboxes/<int:pk>/edit/", views.mailbox_edit, name="mailbox_edit"),
    path("mailboxes/<int:pk>/delete/", views.mailbox_delete, name="mailbox_delete"),
    # Provider accounts
    path("provider-accounts/", views.provider_account_list, name="provider_account_list"),
    path("provider-accounts/new/", views.provider_account_create, name="provider_account_create"),
    path("provider-accounts/<int:pk>/edit/", views.provider_account_edit, name="provider_account_edit"),
    path("provider-accounts/<int:pk>/delete/", views.provider_account_delete, name="provider_account_delete"),
    # Sent messages
    path("messages/", views.message_list, name="message_list"),
    path("messages/<int:pk>/", views.message_detail, name="message_detail"),
    path("messages/<int:pk>/status/", views.message_status, name="message_status"),
    path("messages/<int:pk>/card/", views.message_timeline_card, name="message_timeline_card"),
    path("messages/<int:pk>/action/", views.message_action, name="message_action"),
    # Team members; an invitation is accepted without an account (public: the signed link is the credential)
    path("team/members/", views.member_list, name="member_list"),
    path("team/members/invite/", views.member_invite, name="member_invite"),
    path("invite/<str:token>/", views.invitation_accept_view, name="invitation_accept"),
    path("imports/", include("outreach.imports.urls")),
    path("templates/", include("outreach.message_templates.urls")),
    path("campaigns/", include("outreach.campaigns.urls")),
    # One-click unsubscribe (RFC 8058): public, so it stands here beside the other public URLs.
    path("u/<str:token>/", unsubscribe, name="unsubscribe"),
    path("", include("outreach.inbound.urls")),  # /inbox/…, /messages/ID/reply/, /suppressions/…
]
