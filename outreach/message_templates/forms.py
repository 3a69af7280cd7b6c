"""Forms of the template editor: field shapes only; the template rules live in services."""
from __future__ import annotations

from django import forms

from ..forms import HeaderField
from ..selectors import active_mailboxes


class MessageTemplateForm(forms.Form):
    """Name, subject and HTML body of a template, plus what the preview and the test send need."""

    name = forms.CharField(max_length=200)
    subject = HeaderField(max_length=998, help_text="Merge fields and spintax work here too.")
    html_body = forms.CharField(label="Body (HTML)", widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "true"}),
                                help_text="Inline styles and tables are kept in what is sent.")
    preview_contact = forms.CharField(label="Preview as contact", max_length=254, required=False,
                                      help_text="An email address of one of your contacts (blank: your newest contact).")
    test_mailbox = forms.ModelChoiceField(label="Send the test from", queryset=None, required=False, empty_label=None)

    def __init__(self, *args, team, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["test_mailbox"].queryset = active_mailboxes(team=team)
