from django import forms

from .importer import MAX_FILE_BYTES


class ManifestImportForm(forms.Form):
    manifest = forms.FileField(
        help_text="CSV with columns meter_number, msisdn, iccid and optionally manufacturer, "
        "model, batch."
    )
    dry_run = forms.BooleanField(
        required=False, initial=True, help_text="Check the file and report; import nothing."
    )

    def clean_manifest(self):
        upload = self.cleaned_data["manifest"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError("The file is too large.")
        return upload


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=200, min_length=5)
