"""Forms of the inbound feature: the reply form and adding a suppression."""
from __future__ import annotations

import uuid

from django import forms

from ..forms import HeaderField
from ..models import Suppression, Team
from ..selectors import active_mailboxes


class ReplyForm(forms.Form):
    """A threaded reply: mailbox, subject ("Re: …"), plain-text body, and whether to quote."""

    mailbox = forms.ModelChoiceField(queryset=None, empty_label=None)
    subject = HeaderField(max_length=998)
    body = forms.CharField(label="Your reply", widget=forms.Textarea(attrs={"rows": 10}))
    include_quote = forms.BooleanField(label="Quote the message I am answering", required=False, initial=True)
    submission_key = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4, required=False)

    def __init__(self, *args, team: Team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mailbox"].queryset = active_mailboxes(team=team)
        self.fields["mailbox"].label_from_instance = lambda m: str(m) if m.provider == "smtp" else f"{m} — {m.provider}"


class SuppressionAddForm(forms.Form):
    """One address to suppress, with a reason and a note."""

    email = forms.CharField(label="Email address", max_length=254)
    reason = forms.ChoiceField(choices=Suppression.Reason.choices, initial=Suppression.Reason.MANUAL)
    detail = forms.CharField(label="Note", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))
