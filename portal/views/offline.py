"""Offline registration on the project page (SPEC section 12): an owner pastes or uploads a
device's registration request and gets the registration response (the local license JWS) to
carry back to the device. The rules are those of an authorization (devices.offline)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from devices.offline import parse_offline_request, register_offline
from devices.outcomes import Refusal
from portal.access import get_project_for


class OfflineForm(forms.Form):
    request_text = forms.CharField(
        required=False,
        label="Registration request (paste)",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
        help_text="The JSON the device's SDK (or dls-client offline-request) wrote.",
    )
    request_file = forms.FileField(required=False, label="or upload the request file")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        upload = data.get("request_file")
        if upload is not None:
            if upload.size > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                raise forms.ValidationError("The file is larger than 1 MiB.")
            data["raw"] = upload.read()
        elif data.get("request_text", "").strip():
            data["raw"] = data["request_text"]
        else:
            raise forms.ValidationError("Paste the registration request or upload its file.")
        return data


@require_http_methods(["GET", "POST"])
@login_required
def offline_register(request: HttpRequest, pk: int) -> HttpResponse:
    project = get_project_for(request, pk, change=True)
    form = OfflineForm(request.POST or None, request.FILES or None)
    context = {"project": project, "form": form, "token": None, "refusal": None}
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                offline_request = parse_offline_request(form.cleaned_data["raw"])
                context["token"] = register_offline(project, offline_request, now=timezone.now(), actor=request.user)
                context["device_uuid"] = offline_request.device_uuid
                status = 200
            except Refusal as refusal:
                context["refusal"] = refusal
    return render(request, "portal/offline.html", context, status=status)
