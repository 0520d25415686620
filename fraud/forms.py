from django import forms

from . import selectors
from .models import CaseState, Cause, Resolution, Severity

STATE_FILTER = [("", "Active (not closed)"), *CaseState.choices, ("all", "All")]


class CaseFilterForm(forms.Form):
    state = forms.ChoiceField(choices=STATE_FILTER, required=False)
    severity = forms.TypedChoiceField(
        choices=[("", "Any severity"), *Severity.choices],
        coerce=int,
        required=False,
        empty_value=None,
    )
    cause = forms.ChoiceField(choices=[("", "Any cause"), *Cause.choices], required=False)
    meter = forms.CharField(max_length=40, required=False, label="Meter number contains")


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000, label="Note")


class ResolveForm(forms.Form):
    resolution = forms.ChoiceField(choices=Resolution.choices)
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )


class CloseForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )


class DispatchForm(forms.Form):
    engineer = forms.ModelChoiceField(queryset=None, label="Field engineer")
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), max_length=4000, required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["engineer"].queryset = selectors.field_engineers()


class VisitForm(forms.Form):
    outcome = forms.ChoiceField(choices=Resolution.choices, label="What you found")
    notes = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), max_length=4000, required=False
    )


class UploadForm(forms.Form):
    export = forms.FileField(label="Signed readings export from the meter's SD card")


class AbsenceForm(forms.Form):
    """A customer's declared absence (the portal's "Going away?" card)."""

    first_day = forms.DateField(label="First day away", widget=forms.DateInput({"type": "date"}))
    last_day = forms.DateField(label="Last day away", widget=forms.DateInput({"type": "date"}))
    note = forms.CharField(max_length=200, required=False, label="Note (optional)")
