"""Django admin for operators: every model, team-scoped for non-superuser staff (admin_scoping),
team roles honoured, write-only credentials, read-only history, writes through the services."""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from providers.registry import PROVIDERS

from .admin_bulk import delete_selected as admin_bulk_delete_selected
from .admin_scoping import TeamScopedAdmin, TeamScopedInline, request_team
from .campaigns.admin import CampaignAdmin, EnrolmentAdmin, enrol_contacts_action
from .dbindexes import contact_search_text
from .forms import config_form_fields, config_initial
from .pagination import EstimatedCountPaginator
from .templatetags.outreach_format import strftime
from .message_templates.services import template_check
from .external_ids import external_id_fields
from .models import (Attachment, BulkJob, Contact, ExternalId, Lead, Mailbox, Membership, MessageTemplate, ProviderAccount, SentMessage,
                     Suppression, Team, TimelineEvent)
from .services.contacts import (CONTACT_FIELDS, LEAD_FIELDS, contact_create, contact_update, lead_create, lead_update,
                                leads_delete)
from .services.external_ids import external_id_check, external_id_set
from .services.mailboxes import (credentials_rotate, mailbox_config_clean, mailbox_connect, mailbox_connect_provider,
                                 mailbox_update)
from .services.provider_accounts import provider_account_create, provider_account_delete, provider_account_update
from .selectors import apply_text_search
from .services.teams import membership_remove, membership_role_check, membership_set_role
from .services.sending_rules import RULE_FIELDS, validate_sending_rules
from .validation import sender_problems


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    """Non-superusers see only their own team; only its owners/admins rename it; only superusers add or delete teams."""

    list_display = ("name", "created_at")
    search_fields = ("name",)
    admin_role_required = True

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TeamScopedAdmin):
    """Non-superusers: their team's members only; owners/admins change roles or remove members
    (through the team services: the last owner stays); nobody but a superuser moves a user to
    another team or adds a membership here (members are invited from the Members page)."""

    list_display = ("user", "team", "role")
    list_filter = ("team", "role")
    search_fields = ("user__username", "user__email", "team__name")
    autocomplete_fields = ("team",)
    admin_role_required = True

    def has_add_permission(self, request):
        return request.user.is_superuser

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return ()
        return ("user", "team")

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class RoleCheckedForm(form):
            def clean(self):
                data = super().clean()
                if self.instance.pk and "role" in data:
                    try:
                        membership_role_check(membership=Membership.objects.get(pk=self.instance.pk), role=data["role"])
                    except ValidationError as err:
                        self.add_error("role", err)
                return data

        return RoleCheckedForm

    def save_model(self, request, obj, form, change):
        """A role change goes through membership_set_role; user/team changes are superuser-only fields."""
        if not change:
            return super().save_model(request, obj, form, change)
        if "role" in form.changed_data:
            membership_set_role(membership=Membership.objects.get(pk=obj.pk), role=obj.role, actor=request.user)
        others = [name for name in form.changed_data if name != "role"]
        if others:
            Membership.objects.filter(pk=obj.pk).update(**{name: getattr(obj, name) for name in others})

    def delete_model(self, request, obj):
        try:
            membership_remove(membership=obj, actor=request.user)
        except ValidationError as err:
            self.message_user(request, " ".join(err.messages), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for membership in queryset:
            self.delete_model(request, membership)


class LargeChangeList(ChangeList):
    """Django's change list, with each row's link built from one reversed route (the pk put in
    a marker's place) instead of a ``reverse()`` per row (~3 ms of a 50-row page)."""

    _PK_MARK = "918273645501"

    def url_for_result(self, result):
        route = self.__dict__.get("_result_route")
        if route is None:
            route = self._result_route = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                                                 args=(self._PK_MARK,), current_app=self.model_admin.admin_site.name)
        return route.replace(self._PK_MARK, str(quote(getattr(result, self.pk_attname))), 1)


class LargeListAdmin(admin.ModelAdmin):
    """List-page settings for tables with millions of rows: no full-table COUNT (an estimating
    paginator, no "N total" count), newest first by primary key (an index every filter can walk),
    and the search served by the contact trigram index (``contact_search_prefix`` is the ORM path
    from this model to the contact, "" for Contact itself).

    With a ``bulk_delete_kind`` (a BulkJob.Kind), "Delete selected …" after "select all" on more
    than ``OUTREACH_BULK_JOB_THRESHOLD`` rows asks on a page of its own and then runs as bulk
    jobs (``outreach.admin_bulk.delete_selected``; ``bulk_delete_cascade`` says what goes with
    the rows); below the threshold it is Django's action."""

    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50
    ordering = ("-pk",)
    contact_search_prefix: str | None = None
    search_help_text = "Matches email, first and last name, and company."
    bulk_delete_kind: str | None = None
    bulk_delete_cascade = ""

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.bulk_delete_kind and "delete_selected" in actions:
            _django, name, description = actions["delete_selected"]
            actions["delete_selected"] = (admin_bulk_delete_selected, name, description)
        return actions

    def get_changelist(self, request, **kwargs):
        return LargeChangeList

    @admin.display(description="created at", ordering="created_at")
    def created(self, obj):
        """The row's creation time as the UI lists show it (``YYYY-MM-DD HH:MM``, current time
        zone): Django's localized date format for a field column parses its format on every
        row (~2 ms of a 50-row page)."""
        return strftime(obj.created_at, "%Y-%m-%d %H:%M")

    def action_checkbox(self, obj):
        """The row's selection checkbox, the same markup as Django's (``CheckboxInput`` rendered
        through the form renderer's templates), written directly: 50 widget template renders
        were a fifth of a list page's rendering time."""
        label = format_html(_("Select this object for an action - {}"), str(obj))
        return format_html('<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
                           helpers.ACTION_CHECKBOX_NAME, str(obj.pk), label)

    def get_search_results(self, request, queryset, search_term):
        if self.contact_search_prefix is None:
            return super().get_search_results(request, queryset, search_term)
        # The contacts' trigram index has one partial index per team shard: a staff user's list
        # (one team) names its team's shard, a superuser's (every team) all of them.
        team = None if request.user.is_superuser else request_team(request)
        prefix = self.contact_search_prefix
        return apply_text_search(queryset, search_term, contact_search_text(prefix), team_path=prefix + "team",
                                 team=team), False


User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class UserAdmin(TeamScopedAdmin, DjangoUserAdmin):
    """Django's user admin, team-scoped for non-superusers (their team's members only), who can
    never grant staff, superuser, group or permission rights."""

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        return ("is_staff", "is_superuser", "groups", "user_permissions", "last_login", "date_joined")

    def has_add_permission(self, request):
        return request.user.is_superuser  # a user without a team would escape every scope


class LeadInline(TeamScopedInline, admin.StackedInline):
    model = Lead
    extra = 0
    fields = ("status", "owner", "source")


def _declared_choice(object: str, provider: str, kind: str) -> str:
    return f"{object}:{provider}:{kind}"


class ExternalIdInlineForm(forms.ModelForm):
    """One vendor id: which one (a declared provider id, ``outreach.external_ids``), its value and extra data."""

    declared = forms.ChoiceField(label="Vendor id")

    class Meta:
        model = ExternalId
        fields = ("value", "extra_data")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["declared"].choices = [
            (_declared_choice(f.object, f.provider, f.kind), f.label + (" (lead)" if f.object == "lead" else ""))
            for f in external_id_fields()]
        if self.instance.pk:
            self.initial["declared"] = _declared_choice(self.instance.object, self.instance.provider, self.instance.kind)
        self.fields["extra_data"].required = False

    def clean(self):
        data = super().clean()
        if data.get("declared"):
            obj, provider, kind = data["declared"].split(":", 2)
            try:
                data["value"] = external_id_check(object=obj, provider=provider, kind=kind, value=data.get("value", ""),
                                                  extra_data=data.get("extra_data") or {})
            except ValidationError as err:
                raise ValidationError(err.messages) from err
            self.instance.object, self.instance.provider, self.instance.kind = obj, provider, kind
        return data


class ExternalIdInline(TeamScopedInline, admin.TabularInline):
    """The contact's and its lead's vendor ids, written through ``external_id_set``."""

    model = ExternalId
    form = ExternalIdInlineForm
    extra = 0
    fields = ("declared", "value", "extra_data")
    verbose_name = "vendor id"


def _copy_into(target, source) -> None:
    """Make the admin's unsaved ``target`` the row a service saved (``source``)."""
    target.__dict__.update({k: v for k, v in source.__dict__.items() if not k.startswith("_")})
    target._state.adding = False


@admin.register(Contact)
class ContactAdmin(LargeListAdmin, TeamScopedAdmin):
    list_display = ("email", "first_name", "last_name", "company", "title", "team", "created")
    list_filter = ("team", "created_at")
    search_fields = ("email", "first_name", "last_name", "company")
    contact_search_prefix = ""
    list_select_related = ("team",)
    inlines = [LeadInline, ExternalIdInline]
    readonly_fields = ("created_at", "updated_at")
    actions = [enrol_contacts_action]
    bulk_delete_kind = BulkJob.Kind.DELETE
    bulk_delete_cascade = "Their leads, sent messages and timelines are deleted with them."

    def save_model(self, request, obj, form, change):
        """Through contact_create / contact_update, with their timeline rows."""
        data = {name: form.cleaned_data[name] for name in CONTACT_FIELDS if name in form.cleaned_data}
        if change:
            saved = contact_update(contact=Contact.objects.get(pk=obj.pk), actor=request.user, data=data)
        else:
            saved = contact_create(team=form.cleaned_data["team"], actor=request.user, data=data)
        _copy_into(obj, saved)

    def save_formset(self, request, form, formset, change):
        """Leads of the inline through lead_create / lead_update / leads_delete, vendor ids through
        external_id_set (team taken from the contact)."""
        contact = form.instance
        if formset.model is ExternalId:
            return self._save_external_ids(contact, formset)
        if formset.model is not Lead:
            return super().save_formset(request, form, formset, change)
        for lead in formset.save(commit=False):
            data = {name: getattr(lead, name) for name in LEAD_FIELDS}
            if lead.pk is None:
                lead_create(team=contact.team, contact=contact, actor=request.user, data=data)
            else:
                lead_update(lead=Lead.objects.select_related("contact").get(pk=lead.pk), actor=request.user, data=data)
        if formset.deleted_objects:
            leads_delete(team=contact.team, ids=[lead.pk for lead in formset.deleted_objects])

    @staticmethod
    def _save_external_ids(contact, formset) -> None:
        rows = formset.save(commit=False)
        for row in [*formset.deleted_objects, *(r for r in rows if r.pk is not None)]:
            old = ExternalId.objects.get(pk=row.pk)  # the row as stored: a changed "which id" clears the old one
            if row in formset.deleted_objects or (old.object, old.provider, old.kind) != (row.object, row.provider, row.kind):
                external_id_set(contact=contact, object=old.object, provider=old.provider, kind=old.kind, value="")
        for row in rows:
            external_id_set(contact=contact, object=row.object, provider=row.provider, kind=row.kind, value=row.value,
                            extra_data=row.extra_data or {})


@admin.register(Lead)
class LeadAdmin(LargeListAdmin, TeamScopedAdmin):
    list_display = ("contact", "status", "owner", "team", "source", "created")
    list_filter = ("team", "status")
    search_fields = ("contact__email", "contact__company", "source")
    contact_search_prefix = "contact__"
    autocomplete_fields = ("contact",)
    list_select_related = ("contact", "owner", "team")
    bulk_delete_kind = BulkJob.Kind.DELETE_LEADS
    bulk_delete_cascade = "Their vendor ids are deleted with them; the contacts stay."

    def save_model(self, request, obj, form, change):
        """Through lead_create / lead_update, with their timeline rows."""
        data = {name: form.cleaned_data[name] for name in LEAD_FIELDS if name in form.cleaned_data}
        if change:
            saved = lead_update(lead=Lead.objects.select_related("contact").get(pk=obj.pk), actor=request.user, data=data)
        else:
            contact = form.cleaned_data["contact"]
            saved = lead_create(team=contact.team, contact=contact, actor=request.user, data=data)
        _copy_into(obj, saved)

    def delete_model(self, request, obj):
        """Through leads_delete: the lead's vendor ids go with it."""
        leads_delete(team=obj.team, ids=[obj.pk])

    def delete_queryset(self, request, queryset):
        for team_id in set(queryset.values_list("team_id", flat=True)):
            leads_delete(team=Team.objects.get(pk=team_id), ids=queryset.filter(team_id=team_id).values_list("pk", flat=True))


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


class MailboxAdminForm(forms.ModelForm):
    """The admin's mailbox form: the mailbox's columns plus its provider's declared settings
    (:meth:`MailboxAdmin.get_form` adds them: every provider's on add, the mailbox's own on change;
    secrets write-only). The checks are the services' (the UI's): provider from the registry, the
    provider's settings, SSRF host rules, a changed server needs its password again."""

    class Meta:
        model = Mailbox
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name, value in config_initial(self.instance).items():
                self.initial.setdefault(name, value)

    def clean(self):
        data = super().clean()
        existing = Mailbox.objects.get(pk=self.instance.pk) if self.instance.pk else None
        provider = existing.provider if existing is not None else data.get("provider")
        present = {k: v for k, v in data.items() if k not in self.errors}
        problems: dict[str, str] = {}
        if provider in PROVIDERS:
            problems.update(mailbox_config_clean(provider=provider, data=present, existing=existing).problems)
            if provider != "smtp":
                account = data.get("provider_account")
                if account is None or account.provider != provider or account.team_id != getattr(data.get("team"), "pk", None):
                    problems["provider_account"] = "Choose a provider account of this team and provider."
        # The same sender and sending-rule checks as the UI and add_mailbox (services).
        problems.update(sender_problems(name=data.get("sender_name", ""), email=data.get("sender_email", "")))
        if all(name in data for name in RULE_FIELDS):
            problems.update(validate_sending_rules(**{name: data[name] for name in RULE_FIELDS}))
        for name, message in problems.items():
            if name not in self.errors:
                self.add_error(name if name in self.fields else None, message)
        return data


@admin.register(Mailbox)
class MailboxAdmin(TeamScopedAdmin):
    """Team owners/admins only (members see the list); saved through the mailbox services."""

    form = MailboxAdminForm
    admin_role_required = True
    list_display = ("sender_email", "sender_name", "provider", "server", "team", "is_active", "last_check_ok")
    list_filter = ("team", "provider", "is_active")
    search_fields = ("sender_email", "sender_name", "provider_config__smtp_host")
    readonly_fields = ("last_checked_at", "last_check_ok", "created_at", "updated_at")
    actions = ["rotate_selected_credentials"]

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The form with the provider's settings as fields (all providers' on add: the provider is chosen there)."""
        names = [obj.provider] if obj is not None and obj.provider in PROVIDERS else list(PROVIDERS)
        extra: dict = {}
        for name in names:
            extra.update(config_form_fields(PROVIDERS[name].config_class, provider_label=PROVIDERS[name].label,
                                            required=False, mailbox=obj))
        kwargs["form"] = type("MailboxAdminForm", (self.form,), extra)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        """The mailbox's columns, then one fieldset per provider settings group (named after its provider)."""
        names = [obj.provider] if obj is not None and obj.provider in PROVIDERS else list(PROVIDERS)
        groups: dict[str, list[str]] = {}
        for name in names:
            config_class, label = PROVIDERS[name].config_class, PROVIDERS[name].label
            for setting_name, spec in config_class.settings():
                if spec.editable:
                    groups.setdefault(spec.group or f"{label} settings", []).append(config_class.form_name(setting_name))
        config_fields = {field for fields in groups.values() for field in fields}
        columns = [field for field in self.get_fields(request, obj) if field not in config_fields]
        return [(None, {"fields": columns}), *((legend, {"fields": fields}) for legend, fields in groups.items())]

    @admin.display(description="Server / account")
    def server(self, obj: Mailbox) -> str:
        if obj.provider_account_id:
            return str(obj.provider_account)
        host = (obj.provider_config or {}).get("smtp_host", "")
        return f"{host}:{obj.provider_config.get('smtp_port', '')}" if host else "—"

    def get_readonly_fields(self, request, obj=None):
        # A mailbox keeps its provider (and team): connect a new one instead.
        return (*self.readonly_fields, "provider", "team") if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):
        """Through mailbox_update / mailbox_connect / mailbox_connect_provider."""
        data = form.cleaned_data
        if change:
            saved = mailbox_update(mailbox=obj, data=data)
        elif data["provider"] == "smtp":
            saved = mailbox_connect(team=data["team"], data=data)
        else:
            saved = mailbox_connect_provider(team=data["team"], account=data["provider_account"], data=data)
        if saved is not obj:
            saved.is_active = data.get("is_active", True)
            saved.save(update_fields=["is_active"])
            _copy_into(obj, saved)

    @admin.action(description="Re-encrypt the selected mailboxes' credentials under the newest key")
    def rotate_selected_credentials(self, request, queryset):
        counts = credentials_rotate(mailboxes=queryset, provider_accounts=ProviderAccount.objects.none())
        self.message_user(request, f"Re-encrypted the credentials of {counts['mailboxes']} mailbox(es).", messages.SUCCESS)


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
    """Team owners/admins only; saved through the provider-account services."""

    form = ProviderAccountAdminForm
    admin_role_required = True
    list_display = ("name", "provider", "base_url", "team", "created_at")
    list_filter = ("team", "provider")
    search_fields = ("name",)
    actions = ["rotate_selected_credentials"]

    def save_model(self, request, obj, form, change):
        """Through provider_account_create / provider_account_update (base URL and key checks)."""
        data = form.cleaned_data
        if change:
            saved = provider_account_update(account=ProviderAccount.objects.get(pk=obj.pk), name=data["name"],
                                            api_key=data.get("api_key") or None, base_url=data.get("base_url", ""))
        else:
            saved = provider_account_create(team=data["team"], provider=data["provider"], name=data["name"],
                                            api_key=data.get("api_key", ""), base_url=data.get("base_url", ""))
        _copy_into(obj, saved)

    def get_readonly_fields(self, request, obj=None):
        return ("provider",) if obj is not None else ()

    def delete_model(self, request, obj):
        try:
            provider_account_delete(account=obj)
        except ValidationError as err:
            self.message_user(request, " ".join(err.messages), messages.ERROR)

    def delete_queryset(self, request, queryset):
        for account in queryset:
            self.delete_model(request, account)

    @admin.action(description="Re-encrypt the selected accounts' API keys under the newest key")
    def rotate_selected_credentials(self, request, queryset):
        counts = credentials_rotate(mailboxes=Mailbox.objects.none(), provider_accounts=queryset)
        self.message_user(request, f"Re-encrypted the API keys of {counts['provider_accounts']} account(s).", messages.SUCCESS)


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
    list_display = ("subject", "contact", "mailbox", "status", "attempts", "provider", "team", "created", "sent_at")
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

    # History: messages are created by compose/send_email (sent_message_create), never here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(TimelineEvent)
class TimelineEventAdmin(LargeListAdmin, TeamScopedAdmin):
    list_display = ("created", "contact", "kind", "summary", "team")
    list_filter = ("team", "kind")
    search_fields = ("contact__email",)
    contact_search_prefix = "contact__"
    list_select_related = ("contact", "team", "actor")
    bulk_delete_kind = BulkJob.Kind.DELETE_EVENTS
    bulk_delete_cascade = "The contacts stay."

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


# Campaigns have their own module (read-mostly; state changes and enrolment through services).
from .models import Campaign, Enrolment  # noqa: E402

admin.site.register(Campaign, CampaignAdmin)
admin.site.register(Enrolment, EnrolmentAdmin)

# Inbound mail has its own module (read-only inbound messages).
from .inbound import admin as _inbound_admin  # noqa: E402,F401

# Bulk jobs: read-only (started from the list pages and admin's "select all"; outreach.services.bulk_jobs),
# cancel as an action.
from .services.bulk_jobs import bulk_job_cancel  # noqa: E402


@admin.register(BulkJob)
class BulkJobAdmin(TeamScopedAdmin):
    """The "all N matching" bulk actions run in the background: read-only, with a cancel action.
    Non-superuser staff see only their team's jobs."""

    list_display = ("kind", "status", "team", "actor", "total", "done", "changed", "created_at", "finished_at")
    list_filter = ("status", "kind", "team", "created_at")
    list_select_related = ("team", "actor")
    actions = ["cancel_jobs"]
    readonly_fields = ("team", "actor", "kind", "query", "value", "status", "cancel_requested", "total", "done",
                       "changed", "details", "message", "max_pk", "cursor", "claimed_by", "lease_until", "task_id",
                       "started_at", "finished_at", "created_at", "updated_at")

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected jobs", permissions=["view"])
    def cancel_jobs(self, request, queryset):
        jobs = [bulk_job_cancel(job=job) for job in queryset]
        messages.info(request, f"Cancel requested for {len(jobs)} job(s).")
