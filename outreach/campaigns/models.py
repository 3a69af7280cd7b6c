"""Campaign tables. Imported by ``outreach.models`` so they belong to the ``outreach`` app.

State of one contact in a campaign is its :class:`Enrolment`: which step comes next and when it is
due. Each (enrolment, step) becomes at most one SentMessage — :class:`CampaignMessage` links them
under a unique constraint — so a scheduler that runs twice, or a worker that dies and restarts,
can never send a step twice.
"""
from __future__ import annotations

import datetime

from django.conf import settings
from django.db import models

from ..models import Contact, Mailbox, SentMessage, TeamOwned


class Campaign(TeamOwned):
    """A named sequence of steps sent from one or more mailboxes (rotated across contacts).

    ``status``: draft → active ⇄ paused → completed | stopped. The send window (``send_days``,
    ``window_start``–``window_end``) is read in each recipient's time zone (Contact.time_zone),
    falling back to ``time_zone``.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"

    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    mailboxes = models.ManyToManyField(Mailbox, related_name="campaigns", blank=True)
    time_zone = models.CharField("time zone", max_length=64, default="UTC",
                                 help_text="IANA name (e.g. Europe/Paris), used for contacts without a time zone.")
    send_days = models.CharField("send days", max_length=20, default="0,1,2,3,4", blank=True,
                                 help_text="Days of the week, 0 = Monday … 6 = Sunday, comma-separated (blank = every day).")
    window_start = models.TimeField("window opens", default=datetime.time(9, 0))
    window_end = models.TimeField("window closes", default=datetime.time(17, 0),
                                  help_text="Equal to the opening time = all day.")
    stop_on_auto_reply = models.BooleanField("stop on auto-reply", default=False,
                                             help_text="Replies, bounces and unsubscribes always stop a contact.")
    stop_company_on_reply = models.BooleanField("stop the whole company on reply", default=False,
                                                help_text="When one contact replies, stop everyone at the same email domain.")
    skip_active_elsewhere = models.BooleanField("skip contacts active in another campaign", default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="campaign_name_unique_per_team")]
        indexes = [models.Index(fields=["team", "status"], name="campaign_team_status")]

    def __str__(self) -> str:
        return self.name


class CampaignStep(models.Model):
    """Step ``position`` (1-based) of a campaign: sent ``delay`` after the previous step was sent
    (step 1: at once when the contact is enrolled), optionally counting business days only.
    ``new_thread=False`` sends it as a reply in the thread of step 1 ("Re: …")."""

    class Unit(models.TextChoices):
        HOURS = "hours", "hours"
        DAYS = "days", "days"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField()
    delay_amount = models.PositiveIntegerField("delay", default=0)
    delay_unit = models.CharField(max_length=5, choices=Unit.choices, default=Unit.DAYS)
    business_days_only = models.BooleanField(default=False, help_text="Count only Monday to Friday (for days).")
    new_thread = models.BooleanField(default=False, help_text="Start a new thread instead of replying to step 1.")

    class Meta:
        ordering = ["campaign", "position"]
        constraints = [models.UniqueConstraint(fields=["campaign", "position"], name="campaign_step_position_unique")]

    def __str__(self) -> str:
        return f"{self.campaign} · step {self.position}"


class StepVariant(models.Model):
    """One version of a step's email (A/B testing): a template subject and body, and its share of
    contacts (``weight``, relative to the step's other variants)."""

    step = models.ForeignKey(CampaignStep, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(max_length=10, default="A")
    subject = models.CharField(max_length=998)
    html_body = models.TextField("body (HTML)")
    weight = models.PositiveIntegerField(default=100)

    class Meta:
        ordering = ["step", "label"]
        constraints = [models.UniqueConstraint(fields=["step", "label"], name="step_variant_label_unique")]

    def __str__(self) -> str:
        return f"{self.step} · {self.label}"


class Enrolment(TeamOwned):
    """One contact in one campaign: ``next_step`` (position) is due at ``next_due_at`` (None while the
    previous step's message is still in the outbox). ``skipped`` enrolments were never started and
    say why in ``reason``; ``stopped`` ones say what stopped them."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        STOPPED = "stopped", "Stopped"
        SKIPPED = "skipped", "Skipped"

    class Reason(models.TextChoices):
        NONE = "", "—"
        REPLIED = "replied", "Replied"
        COMPANY_REPLIED = "company_replied", "Someone at the company replied"
        BOUNCED = "bounced", "Bounced"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        AUTO_REPLIED = "auto_replied", "Auto-replied"
        SUPPRESSED = "suppressed", "On the suppression list"
        ACTIVE_ELSEWHERE = "active_elsewhere", "Active in another campaign"
        MISSING_FIELD = "missing_field", "Missing a merge field"
        SEND_FAILED = "send_failed", "A step could not be sent"
        CAMPAIGN_STOPPED = "campaign_stopped", "Campaign stopped"
        REMOVED = "removed", "Removed by a user"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="enrolments")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="enrolments")
    mailbox = models.ForeignKey(Mailbox, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    reason = models.CharField(max_length=20, choices=Reason.choices, default=Reason.NONE, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    next_step = models.PositiveIntegerField(default=1)
    next_due_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "contact"], name="enrolment_unique_per_campaign")]
        indexes = [
            models.Index(fields=["status", "next_due_at"], name="enrolment_due"),
            models.Index(fields=["campaign", "status"], name="enrolment_campaign_status"),
            models.Index(fields=["contact", "status"], name="enrolment_contact_status"),
        ]

    def __str__(self) -> str:
        return f"{self.contact} in {self.campaign} [{self.status}]"


class CampaignMessage(models.Model):
    """The one SentMessage of one (enrolment, step): the database refuses a second."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="messages")
    step = models.ForeignKey(CampaignStep, on_delete=models.PROTECT, related_name="messages")
    variant = models.ForeignKey(StepVariant, null=True, on_delete=models.SET_NULL, related_name="messages")
    sent_message = models.OneToOneField(SentMessage, on_delete=models.CASCADE, related_name="campaign_message")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enrolment", "step"], name="campaign_message_once_per_step")]

    def __str__(self) -> str:
        return f"{self.enrolment} · step {self.step.position}"
