"""Forms of the campaign pages: field shapes only; the rules live in ``services``."""
from __future__ import annotations

import datetime

from django import forms

from ..forms import HeaderField
from ..selectors import active_mailboxes
from .models import Campaign, CampaignStep


class CampaignForm(forms.Form):
    """Name, mailboxes, the send window (read in each recipient's time zone) and the stop options."""

    name = forms.CharField(max_length=200)
    mailboxes = forms.ModelMultipleChoiceField(queryset=None, required=False, widget=forms.CheckboxSelectMultiple,
                                               help_text="Contacts are spread across these; each keeps its own caps and window.")
    time_zone = forms.CharField(max_length=64, initial="UTC", help_text="For contacts without a time zone, e.g. Europe/Paris.")
    send_days = forms.MultipleChoiceField(label="Send on", required=False, widget=forms.CheckboxSelectMultiple,
                                          choices=[(str(i), d) for i, d in enumerate(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))],
                                          initial=["0", "1", "2", "3", "4"])
    window_start = forms.TimeField(label="From", initial=datetime.time(9, 0), widget=forms.TimeInput(attrs={"type": "time"}))
    window_end = forms.TimeField(label="Until", initial=datetime.time(17, 0), widget=forms.TimeInput(attrs={"type": "time"}),
                                 help_text="In the recipient's time zone; the same time for both = all day.")
    stop_on_auto_reply = forms.BooleanField(label="Stop on auto-reply (out of office)", required=False)
    stop_company_on_reply = forms.BooleanField(label="When one contact replies, stop everyone at the same domain", required=False)
    skip_active_elsewhere = forms.BooleanField(label="Skip contacts active in another campaign", required=False, initial=True)

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mailboxes"].queryset = active_mailboxes(team=team)

    def clean_send_days(self) -> str:
        return ",".join(sorted(self.cleaned_data["send_days"]))

    @staticmethod
    def initial_for(campaign: Campaign) -> dict:
        return {"name": campaign.name, "mailboxes": list(campaign.mailboxes.all()), "time_zone": campaign.time_zone,
                "send_days": [d for d in campaign.send_days.split(",") if d] or [str(i) for i in range(7)],
                "window_start": campaign.window_start, "window_end": campaign.window_end,
                "stop_on_auto_reply": campaign.stop_on_auto_reply, "stop_company_on_reply": campaign.stop_company_on_reply,
                "skip_active_elsewhere": campaign.skip_active_elsewhere}


class StepForm(forms.Form):
    """A step: its delay and threading, variant A, and an optional variant B with the split."""

    # Not shown for step 1 (sent when the contact is enrolled), hence optional.
    delay_amount = forms.IntegerField(label="Wait", min_value=0, initial=2, required=False)
    delay_unit = forms.ChoiceField(label="", choices=CampaignStep.Unit.choices, initial=CampaignStep.Unit.DAYS, required=False)
    business_days_only = forms.BooleanField(label="Business days only", required=False)
    new_thread = forms.BooleanField(label="Start a new thread (instead of replying to step 1)", required=False)
    a_subject = HeaderField(label="Subject", max_length=998)
    a_html_body = forms.CharField(label="Email (HTML)", widget=forms.Textarea(attrs={"rows": 10}))
    a_weight = forms.IntegerField(label="Share of A (%)", min_value=1, max_value=100, initial=50, required=False)
    b_subject = HeaderField(label="Subject (B)", max_length=998, required=False)
    b_html_body = forms.CharField(label="Email (B, HTML)", widget=forms.Textarea(attrs={"rows": 10}), required=False,
                                  help_text="Fill in to A/B test this step; leave empty for one version.")

    def clean_delay_amount(self) -> int:
        return self.cleaned_data.get("delay_amount") or 0

    def clean_delay_unit(self) -> str:
        return self.cleaned_data.get("delay_unit") or CampaignStep.Unit.DAYS

    def variants(self) -> list[tuple[str, str, str, int]]:
        """[(label, subject, html_body, weight)] from the cleaned data."""
        data = self.cleaned_data
        if data.get("b_subject") or data.get("b_html_body"):
            share = data.get("a_weight") or 50
            return [("A", data["a_subject"], data["a_html_body"], share),
                    ("B", data.get("b_subject", ""), data.get("b_html_body", ""), max(100 - share, 1))]
        return [("A", data["a_subject"], data["a_html_body"], 100)]

    @staticmethod
    def initial_for(step: CampaignStep) -> dict:
        variants = {v.label: v for v in step.variants.all()}
        a, b = variants.get("A"), variants.get("B")
        initial = {"delay_amount": step.delay_amount, "delay_unit": step.delay_unit,
                   "business_days_only": step.business_days_only, "new_thread": step.new_thread}
        if a:
            initial.update(a_subject=a.subject, a_html_body=a.html_body)
        if b:
            total = (a.weight if a else 0) + b.weight
            initial.update(b_subject=b.subject, b_html_body=b.html_body, a_weight=round(100 * (a.weight if a else 0) / total))
        return initial

    def service_error_field(self, key: str) -> str | None:
        """The form field for a service error key such as ``variant_A_subject`` (None: non-field)."""
        if key.startswith("variant_"):
            label, _, name = key[len("variant_"):].partition("_")
            key = f"{label.lower()}_{name}"
        return key if key in self.fields else None
