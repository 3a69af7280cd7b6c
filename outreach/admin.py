"""Django admin for operators: every model, team filtering, write-only credentials, read-only timeline."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from .admin_scoping import TeamScopedAdmin
from .dbindexes import contact_search_text
from .pagination import EstimatedCountPaginator
from .selectors import apply_text_search
from .message_templates.services import template_check
from .models import (Attachment, Contact, Lead, Mailbox, Membership, MessageTemplate, ProviderAccount, SentMessage,
                     Suppression, Team, TimelineEvent)
from .services.mailboxes import credentials_rotate


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "role")
    list_filter = ("team", "role")
    search_fields = ("user__username", "user__email", "team__name")
    autocomplete_fields = ("team",)


class LargeListAdmin(admin.ModelAdmin):
    """List-page settings for tables with millions of rows: no full-table COUNT (an estimating
    paginator, no "N total" count), newest first by primary key (an index every filter can walk),
    and the search served by the contact trigram index (``contact_search_prefix`` is the ORM path
    from this model to the contact, "" for Contact itself)."""

    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ("-pk",)
    contact_search_prefix: str | None = None
    search_help_text = "Matches email, first and last name, and company."

    def get_search_results(self, request, queryset, search_term):
        if self.contact_search_prefix is None:
            return super().get_search_results(request, queryset, search_term)
        return apply_text_search(queryset, search_term, contact_search_text(self.contact_search_prefix)), False


class LeadInline(admin.StackedInline):
    model = Lead
    extra = 0
    fields = ("status", "owner", "source", "lemlist_lead_id", "leadlex_deal_id")


@admin.register(Contact)
class ContactAdmin(LargeListAdmin, TeamScopedAdmin):
    list_display = ("email", "first_name", "last_name", "company", "title", "team", "created_at")
    list_filter = ("team", "created_at")
    search_fields = ("email", "first_name", "last_name", "company")
    contact_search_prefix = ""
    list_select_related = ("team",)
    inlines = [LeadInline]
    readonly_fields = ("created_at", "updated_at")


@admin.register(Lead)
class LeadAdmin(LargeListAdmin, TeamScopedAdmin):
    list_display = ("contact", "status", "owner", "team", "source", "created_at")
    list_filter = ("team", "status")
    search_fields = ("contact__email", "contact__company", "source")
    contact_search_prefix = "contact__"
    autocomplete_fields = ("contact",)
    list_select_related = ("contact", "owner", "team")


class SecretInput(forms.PasswordInput):
    """A password input that never renders the stored value."""

    def __init__(self):
        super().__init__(render_value=False, attrs={"autocomplete": "new-password", "placeholder": "leave blank to keep"})


class WriteOnlySecretsForm(forms.ModelForm):
    """A ModelForm whose ``secret_fields`` are write-only: never rendered, a blank value keeps the
    stored secret, a new one is assigned through the model's EncryptedSecret attribute."""

    secret_fields: tuple[str, ...] = ()

    def save(self, commit=True):
        for secret in self.secret_fields:
            if self.cleaned_data.get(secret):
                setattr(self.instance, secret, self.cleaned_data[secret])
        return super().save(commit)


class MailboxAdminForm(WriteOnlySecretsForm):
    secret_fields = ("smtp_password", "imap_password")
    smtp_password = forms.CharField(label="SMTP password", required=False, widget=SecretInput(),
                                    help_text="Write-only: leave blank to keep the stored password.")
    imap_password = forms.CharField(label="IMAP password", required=False, widget=SecretInput(),
                                    help_text="Write-only: leave blank to keep the stored password.")

    class Meta:
        model = Mailbox
        fields = "__all__"


@admin.register(Mailbox)
class MailboxAdmin(TeamScopedAdmin):
    form = MailboxAdminForm
    list_display = ("sender_email", "sender_name", "provider", "smtp_host", "imap_host", "team", "is_active", "last_check_ok")
    list_filter = ("team", "provider", "is_active", "smtp_security")
    search_fields = ("sender_email", "sender_name", "smtp_host")
    readonly_fields = ("last_checked_at", "last_check_ok", "created_at", "updated_at")
    actions = ["rotate_all_credentials"]

    @admin.action(description="Re-encrypt all stored credentials under the newest key")
    def rotate_all_credentials(self, request, queryset):
        counts = credentials_rotate()
        self.message_user(request, f"Re-encrypted {counts['mailboxes']} mailboxes and "
                                   f"{counts['provider_accounts']} provider accounts.", messages.SUCCESS)


class ProviderAccountAdminForm(WriteOnlySecretsForm):
    secret_fields = ("api_key",)
    base_url = forms.URLField(required=False, max_length=500, assume_scheme="https",
                              help_text="Leave blank for the provider document's server.")
    api_key = forms.CharField(label="API key", required=False, widget=SecretInput(),
                              help_text="Write-only: leave blank to keep the stored key.")

    class Meta:
        model = ProviderAccount
        fields = "__all__"


@admin.register(ProviderAccount)
class ProviderAccountAdmin(TeamScopedAdmin):
    form = ProviderAccountAdminForm
    list_display = ("name", "provider", "base_url", "team", "created_at")
    list_filter = ("team", "provider")
    search_fields = ("name",)


class AttachmentInline(admin.TabularInline):
    model = Attachment
    extra = 0
    fields = ("filename", "content_type", "size")
    readonly_fields = fields
    can_delete = False


class TimelineInline(admin.TabularInline):
    model = TimelineEvent
    extra = 0
    fields = ("created_at", "kind", "summary")
    readonly_fields = fields
    can_delete = False
    ordering = ("-created_at",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SentMessage)
class SentMessageAdmin(LargeListAdmin, TeamScopedAdmin):
    list_display = ("subject", "contact", "mailbox", "status", "attempts", "provider", "team", "created_at", "sent_at")
    list_filter = ("team", "status", "provider", "created_at")
    search_fields = ("subject", "contact__email", "message_id", "provider_message_id")
    list_select_related = ("contact", "mailbox", "team")
    autocomplete_fields = ("contact", "mailbox")
    search_help_text = ""
    defer_fields = ("html_body", "text_body", "provider_response")
    readonly_fields = ("message_id", "idempotency_key", "status", "attempts", "provider_message_id", "provider_thread_id",
                       "provider_status", "provider_response", "error_code", "error_message", "queued_at",
                       "sending_started_at", "sent_at", "failed_at", "created_at", "updated_at")
    inlines = [AttachmentInline, TimelineInline]

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*self.defer_fields)


@admin.register(TimelineEvent)
class TimelineEventAdmin(LargeListAdmin, TeamScopedAdmin):
    list_display = ("created_at", "contact", "kind", "summary", "team")
    list_filter = ("team", "kind")
    search_fields = ("contact__email",)
    contact_search_prefix = "contact__"
    list_select_related = ("contact", "team", "actor")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Suppression)
class SuppressionAdmin(TeamScopedAdmin):
    list_display = ("email", "reason", "team", "created_at")
    list_filter = ("team", "reason")
    search_fields = ("email",)


# Imports have their own module (upload form, read-only jobs, cancel action).
from .imports.admin import ImportJobAdmin  # noqa: E402
from .models import ImportJob  # noqa: E402

admin.site.register(ImportJob, ImportJobAdmin)


class MessageTemplateAdminForm(forms.ModelForm):
    """Checks the subject and body with the same service the UI uses (line-numbered errors inline)."""

    class Meta:
        model = MessageTemplate
        fields = ("team", "name", "subject", "html_body")

    def clean(self):
        data = super().clean()
        try:
            template_check(subject=data.get("subject") or "", html_body=data.get("html_body") or "")
        except ValidationError as err:
            for field, errors in err.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


@admin.register(MessageTemplate)
class MessageTemplateAdmin(TeamScopedAdmin):
    form = MessageTemplateAdminForm
    list_display = ("name", "subject", "team", "updated_at")
    list_filter = ("team",)
    search_fields = ("name", "subject")
    list_select_related = ("team",)
    readonly_fields = ("created_by", "created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
