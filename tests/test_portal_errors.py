"""The product's own 403, 404 and 500 pages with the way back (SPEC section 10), in production
and in the demo (DEBUG); a 403 is logged as one line, without a traceback."""

from __future__ import annotations

import logging

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from tests.factories import MODEL_BACKEND, NOW, world

pytestmark = pytest.mark.django_db


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


@pytest.mark.parametrize("debug", [False, True])
def test_it_answers_404_with_its_own_page_and_a_way_back(client, w, settings, debug):
    settings.DEBUG = debug
    client.force_login(w.outsider, backend=MODEL_BACKEND)
    for url in (reverse("portal:project", args=[w.project.pk]), "/no/such/page/"):
        response = client.get(url, HTTP_REFERER="http://testserver/")
        assert response.status_code == 404
        page = response.content.decode()
        assert "Nothing here" in page and 'href="http://testserver/">Go back' in page
        assert "Your licenses" in page and "Django" not in page and "URLconf" not in page


@pytest.mark.parametrize("debug", [False, True])
def test_it_answers_403_with_its_own_page_and_logs_no_traceback(client, w, settings, caplog, debug):
    settings.DEBUG = debug
    client.force_login(w.viewer, backend=MODEL_BACKEND)
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.post(reverse("portal:device_release", args=[w.device.pk]), {"confirm": "yes"})
    assert response.status_code == 403
    page = response.content.decode()
    assert "You cannot do this here" in page and "Only an owner of the organization can change this" in page
    assert f'href="{reverse("portal:home")}">Go back' in page  # no referer: the home page
    records = [r for r in caplog.records if r.name == "django.request"]
    assert records and all(r.exc_info is None for r in records)


def test_it_answers_500_with_its_own_page(w, settings):
    from django.urls import path

    from dls_admin import urls as root

    def boom(request):
        raise RuntimeError("boom")

    settings.DEBUG = False
    root.urlpatterns.insert(0, path("__boom__/", boom))
    try:
        client = Client(raise_request_exception=False)
        response = client.get("/__boom__/")
    finally:
        root.urlpatterns.pop(0)
        from django.urls import clear_url_caches

        clear_url_caches()
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert "Back to your licenses" in response.content.decode()


def test_the_api_keeps_its_json_errors(client, settings):
    settings.DEBUG = True
    response = client.get("/api/v1/no-such-endpoint")
    assert response.status_code == 404 and response["Content-Type"].startswith("application/json")
