"""Staff forms of the admin: license file upload, renewal, added quota."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from . import rules
from .models import LicenseItem, Project

MAX_LICENSE_FILE_BYTES = 1024 * 1024


class PageQuantitiesField(forms.JSONField):
    """Shows an empty box, not ``null``, for items that have no page quantities."""

    def prepare_value(self, value):
        return "" if value is None else super().prepare_value(value)


class LicenseItemForm(forms.ModelForm):
    """The admin's item form. LicenseItem.clean checks the applicability table and reports the
    rule on the field it concerns."""

    class Meta:
        model = LicenseItem
        fields = [
            "license",
            "project",
            "product",
            "option",
            "edition",
            "addon",
            "quantity",
            "quantities",
            "domain",
            "period",
            "activation_basis",
            "device_grace_percent",
            "quota_grace_percent",
            "dedup_interval_ms",
            "overuse_percent",
            "overuse_budget",
            "heartbeat_timeout_s",
            "position",
        ]
        field_classes = {"quantities": PageQuantitiesField}
        widgets = {"quantities": forms.Textarea(attrs={"rows": 2, "cols": 40})}
        help_texts = {"quantities": 'per_page only: pages per module, e.g. {"core": 100000, "ocr": 5000}'}

    def _update_errors(self, errors):
        # The model's validation may name a field this form does not show (the editor shows the
        # fields of the item's option only): say it above the form, with the field's name.
        if hasattr(errors, "error_dict"):
            for name in [n for n in errors.error_dict if n != NON_FIELD_ERRORS and n not in self.fields]:
                moved = [ValidationError(f"{name}: {m}") for e in errors.error_dict.pop(name) for m in e.messages]
                errors.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(moved)
        super()._update_errors(errors)  # type: ignore[misc]


class LicenseFileForm(forms.Form):
    file = forms.FileField(required=False, help_text="A license file (JSON, SPEC section 5).")
    text = forms.CharField(
        required=False,
        label="Or paste the JSON",
        widget=forms.Textarea(attrs={"rows": 18, "cols": 100}),
    )

    def clean(self):
        super().clean()
        cleaned = self.cleaned_data
        upload, text = cleaned.get("file"), (cleaned.get("text") or "").strip()
        if upload and text:
            raise forms.ValidationError("Give a file or pasted JSON, not both.")
        if not upload and not text:
            raise forms.ValidationError("Choose a license file or paste its JSON.")
        if upload:
            if upload.size > MAX_LICENSE_FILE_BYTES:
                raise forms.ValidationError("The license file is larger than 1 MiB.")
            cleaned["data"] = upload.read()
        else:
            cleaned["data"] = text
        return cleaned


class RenewForm(forms.Form):
    license_id = forms.CharField(
        required=False, max_length=128, help_text="The new license's id; empty: the old id with -R1, -R2, ..."
    )
    starts_at = forms.DateTimeField(
        required=False, help_text="UTC, e.g. 2027-11-01 00:00. Empty: when the current term ends (or now if it has)."
    )
    expires_at = forms.DateTimeField(help_text="UTC, e.g. 2028-11-01 00:00.")

    def __init__(self, *args, license, now, **kwargs):
        super().__init__(*args, **kwargs)
        start = max(license.expires_at, now)
        self.fields["expires_at"].initial = (start + (license.expires_at - license.starts_at)).replace(microsecond=0)


class AddQuotaForm(forms.Form):
    """An item as a license file writes it. Only the fields of the chosen option may be filled:
    the others are refused, as in an import; empty ones take their defaults."""

    project = forms.ModelChoiceField(queryset=Project.objects.none())
    product = forms.ChoiceField(choices=[(k, f"{k}: {v}") for k, v in rules.PRODUCTS.items()])
    option = forms.ChoiceField(choices=[(o, o) for o in rules.OPTIONS])
    edition = forms.ChoiceField(required=False, choices=[("", "(any)")] + [(e, e) for e in rules.EDITIONS])
    addon = forms.CharField(required=False, max_length=64, help_text="dwt only, e.g. barcode_reader")
    quantity = forms.IntegerField(required=False, min_value=1, help_text="scans, seats, servers or devices per slot")
    quantities = PageQuantitiesField(required=False, help_text='per_page: e.g. {"core": 100000, "ocr": 5000}')
    period = forms.ChoiceField(required=False, choices=[("", "(default: yearly)")] + LicenseItem.PERIODS)
    activation_basis = forms.ChoiceField(
        required=False, choices=[("", "(default: first_authorization)")] + [(a, a) for a in rules.ACTIVATION_BASES]
    )
    device_grace_percent = forms.IntegerField(required=False, min_value=0, help_text="default 10")
    quota_grace_percent = forms.IntegerField(required=False, min_value=0, help_text="default 5")
    overuse_percent = forms.IntegerField(required=False, min_value=0, help_text="default 10")
    overuse_budget = forms.IntegerField(required=False, min_value=0, help_text="default 1000 x quantity")
    dedup_interval_ms = forms.IntegerField(required=False, min_value=0, help_text="default 3000")
    heartbeat_timeout_s = forms.IntegerField(required=False, min_value=1, help_text="default 600")
    domain = forms.CharField(required=False, max_length=255, help_text="per_domain: example.com or *.example.com")

    def __init__(self, *args, license, option: str | None = None, **kwargs):
        """``option``, chosen on the step before, fixes the option and leaves only its fields."""
        super().__init__(*args, **kwargs)
        if option in rules.OPTION_FIELDS:
            self.fields["option"].initial = option
            self.fields["option"].disabled = True
            for name in set().union(*rules.OPTION_FIELDS.values()) - rules.OPTION_FIELDS[option]:
                del self.fields[name]
        projects = Project.objects.filter(organization_id=license.organization_id).order_by("name")
        self.fields["project"].queryset = projects  # type: ignore[attr-defined]
        current = license.items.order_by("id").values_list("project_id", flat=True).first()
        if current:
            self.fields["project"].initial = current

    def item_fields(self) -> dict:
        """The filled fields, as a license file item."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name != "project" and value not in (None, "", {}, [])
        }
