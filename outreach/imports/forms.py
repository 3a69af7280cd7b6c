"""Forms of the CSV import pages: the upload, and the mapping/options step."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from .mapping import CHOICES
from ..campaigns.models import Campaign
from ..campaigns.selectors import campaigns_open
from ..models import ImportJob, Lead


class ImportUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="Comma, semicolon or tab separated; UTF-8, UTF-16 or Windows-1252; up to 256 MB.",
                           widget=forms.ClearableFileInput(attrs={"accept": ".csv,.txt,.tsv,text/csv,text/plain"}))
    name = forms.CharField(label="Import name", max_length=200, required=False,
                           help_text="Becomes the source of the imported contacts and leads. Defaults to the file name.")


class ImportMappingForm(forms.Form):
    """One ``col_N`` choice per CSV column plus the duplicate policy, the lead options and the
    campaign to enrol the imported contacts in (the team's draft, active or paused campaigns)."""

    policy = forms.ChoiceField(label="When a contact with the same email already exists", choices=ImportJob.Policy.choices,
                               initial=ImportJob.Policy.SKIP, widget=forms.RadioSelect)
    as_leads = forms.BooleanField(label="Also make every imported contact a lead", required=False)
    lead_status = forms.ChoiceField(label="Lead status", choices=Lead.Status.choices, initial=Lead.Status.NEW, required=False)
    lead_owner = forms.ModelChoiceField(label="Lead owner", queryset=get_user_model().objects.none(), required=False,
                                        empty_label="— nobody —")
    campaign = forms.ModelChoiceField(label="Enrol the imported contacts in a campaign", required=False,
                                      queryset=Campaign.objects.none(), empty_label="— no campaign —",
                                      help_text="Contacts the import creates are enrolled; suppressed ones, those active "
                                                "in another campaign (if the campaign says so) and those missing a merge "
                                                "field are skipped and counted.")
    enrol_updated = forms.BooleanField(label="Also enrol existing contacts the import updates", required=False)

    def __init__(self, *args, job: ImportJob, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.fields["lead_owner"].queryset = get_user_model().objects.filter(membership__team_id=job.team_id).order_by("username")
        self.fields["campaign"].queryset = campaigns_open(team=job.team)
        self.fields["campaign"].label_from_instance = lambda c: f"{c.name} ({c.get_status_display().lower()})"
        for index, header in enumerate(job.headers):
            self.fields[f"col_{index}"] = forms.ChoiceField(label=header, choices=CHOICES, required=False,
                                                            initial=job.mapping[index] if index < len(job.mapping) else "")

    def column_fields(self):
        """The mapping fields, in column order (for the template)."""
        return [self[f"col_{index}"] for index in range(len(self.job.headers))]

    def mapping(self) -> list[str]:
        return [self.cleaned_data.get(f"col_{index}") or "" for index in range(len(self.job.headers))]
