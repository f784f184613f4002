"""Out-of-range dates on the date options of the commands and the export download: refused with a
CLI error naming the option (or a 400), never a traceback or a 500. Dates are bounded to
1970-01-01 .. 8999-12-31 UTC (licenses.clock.within_range), checked before any shift to UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import factories

pytestmark = pytest.mark.django_db
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

offsets = st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
any_datetime = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59))
date_texts = st.one_of(
    any_datetime.map(lambda d: d.date().isoformat()),
    st.builds(lambda d, tz: d.replace(tzinfo=tz).isoformat(), any_datetime, offsets),
    any_datetime.map(lambda d: d.isoformat()),
    st.sampled_from(["9999-12-31", "0001-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"]),
    st.text(max_size=30),
)


@pytest.fixture
def project():
    return factories.LicenseItemFactory(per_barcode_scan=True).project


@pytest.mark.parametrize(
    "value", ["9999-12-31", "0001-01-01", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00", "1969-12-31"]
)
def test_the_named_faults_are_cli_errors_naming_the_option(project, value):
    for option in ("--from", "--to"):
        with pytest.raises(CommandError, match=f"^{option}: .*must be between 1970-01-01 and 8999-12-31"):
            call_command("export_usage", "--license-key", project.license_key, "--what", "usage", option, value,
                         stdout=StringIO())  # fmt: skip
    if "T" in value:
        with pytest.raises(CommandError, match="^--now: .*must be between"):
            call_command("run_job", "rollup_usage", "--now", value, stdout=StringIO())


def test_the_export_download_answers_400_for_out_of_range_dates(project):
    client = factories.staff_client()[0]
    url = reverse("portal:export", args=[project.pk, "usage"])
    for value in ("9999-12-31", "0001-01-01T00:00:00+01:00"):
        response = client.get(url, {"from": value})
        assert response.status_code == 400 and b"must be between" in response.content


@HYPOTHESIS
@given(value=date_texts, option=st.sampled_from(["--from", "--to"]))
def test_export_usage_refuses_or_exports_any_date_text(project, value, option):
    try:
        call_command("export_usage", "--license-key", project.license_key, "--what", "usage", f"{option}={value}",
                     stdout=StringIO())  # fmt: skip
    except CommandError as e:
        assert str(e).startswith(f"{option}: ")


@HYPOTHESIS
@given(value=date_texts)
def test_run_job_refuses_any_date_out_of_range_naming_now(value):
    try:
        parsed = datetime.fromisoformat(value.strip())
        in_range = parsed.tzinfo is not None and datetime(1970, 1, 1, tzinfo=UTC) <= parsed < datetime(
            9000, 1, 1, tzinfo=UTC
        )
    except (ValueError, OverflowError):
        in_range = False
    if in_range or value == "":
        return  # a real run (empty: the current time), tested in tests/test_jobs_run_job.py
    with pytest.raises(CommandError) as refused:  # --now=VALUE: a value like "-x" is not taken for an option
        call_command("run_job", "rollup_usage", f"--now={value}", stdout=StringIO())
    assert str(refused.value).startswith("--now: ")


@HYPOTHESIS
@given(value=date_texts, param=st.sampled_from(["from", "to"]))
def test_the_export_download_never_fails_on_a_date(project, value, param):
    client = factories.staff_client()[0]
    response = client.get(reverse("portal:export", args=[project.pk, "usage"]), {param: value})
    assert response.status_code in (200, 400)


PAGES = [("portal:statistics", ["start", "end", "day"]), ("portal:concurrency", ["day"])]


@pytest.mark.parametrize(
    "name, param, value",
    [("portal:statistics", "end", "9999-12-31"), ("portal:statistics", "start", "0001-01-01"),
     ("portal:concurrency", "day", "0001-01-01"), ("portal:concurrency", "day", "9999-12-31")],
)  # fmt: skip
def test_the_named_page_faults_are_form_errors_naming_the_field(project, name, param, value):
    client = factories.staff_client()[0]
    response = client.get(reverse(name, args=[project.pk]), {param: value})
    assert response.status_code == 200
    form = response.context["form"]
    assert param in form.errors and ("greater than or equal to 1970-01-01" in str(form.errors[param])
                                     or "less than or equal to 8999-12-31" in str(form.errors[param]))  # fmt: skip


@HYPOTHESIS
@given(page=st.sampled_from(PAGES), data=st.data())
def test_the_portal_date_parameters_never_fail(project, page, data):
    name, params = page
    query = {p: data.draw(date_texts, label=p) for p in data.draw(st.sets(st.sampled_from(params), min_size=1))}
    client = factories.staff_client()[0]
    assert client.get(reverse(name, args=[project.pk]), query).status_code == 200


# The insight pages (docs/insight.md): the what-if form's window and policy numbers, the seat-burn
# group; bounded as the statistics page's dates are, a form error on the field, never a 500.
def what_if_url(project) -> str:
    return reverse("portal:item_insight", args=[project.pk, project.items.get().pk])


def owner_client(project):
    client = Client()
    client.force_login(factories.UserFactory(organization=project.organization), backend=factories.MODEL_BACKEND)
    return client


@pytest.mark.parametrize(
    "field, value, error",
    [("start", "0001-01-01", "greater than or equal to 1970-01-01"),
     ("end", "9999-12-31", "less than or equal to 8999-12-31"),
     ("start", "1969-12-31", "greater than or equal to 1970-01-01"),
     ("quantity", "99999999999999999999", "less than or equal to"),
     ("dedup_interval_ms", "-1", "greater than or equal to 0"),
     ("quota_grace_percent", "1e400", "Enter a whole number")],
)  # fmt: skip
def test_the_what_if_form_refuses_out_of_range_values_naming_the_field(project, field, value, error):
    client = owner_client(project)
    data = {"start": "2026-11-01", "end": "2026-11-02", field: value}
    response = client.post(what_if_url(project), data)
    assert response.status_code == 200
    form = response.context["window"] if field in ("start", "end") else response.context["policy"]
    assert field in form.errors and error in str(form.errors[field])
    assert response.context["result"] is None


def test_the_what_if_window_at_the_edges_of_the_range_runs(project):
    client = owner_client(project)
    for start, end in (("1970-01-01", "1970-01-02"), ("8999-12-01", "8999-12-31")):
        response = client.post(what_if_url(project), {"start": start, "end": end, "dedup_interval_ms": "1"})
        assert response.status_code == 200 and response.context["result"]["requests"] == 0


numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", "0", "1", "10000000", "10000001", "1e400", "9" * 5000, "-0", " 7 ", "٣"]),
    st.text(max_size=12),
)


@pytest.fixture
def concurrent_project():
    return factories.LicenseItemFactory(per_concurrent_device=True, quantity=3).project


@HYPOTHESIS
@given(data=st.data())
def test_the_what_if_parameters_never_fail(project, concurrent_project, data):
    project = data.draw(st.sampled_from([project, concurrent_project]), label="item")
    fields = {"start": date_texts, "end": date_texts, "quantity": numbers, "quota_grace_percent": numbers,
              "dedup_interval_ms": numbers, "recommend": st.sampled_from(["", "1"])}  # fmt: skip
    chosen = data.draw(st.sets(st.sampled_from(sorted(fields)), min_size=1))
    post = {name: data.draw(fields[name], label=name) for name in chosen}
    if data.draw(st.booleans(), label="a short window anywhere in the calendar"):
        edges = st.sampled_from(
            [date(1, 1, 1), date(1969, 12, 31), date(1970, 1, 1), date(8999, 12, 30), date(9999, 12, 1)]
        )
        start = data.draw(st.one_of(edges, any_datetime.map(lambda d: d.date())), label="window start")
        days = data.draw(st.integers(min_value=1, max_value=90), label="days")
        post.update(start=start.isoformat(), end=(start + min(timedelta(days=days), date.max - start)).isoformat())
    client = owner_client(project)
    assert client.post(what_if_url(project), post).status_code in (200, 302)
    assert client.get(what_if_url(project), post).status_code == 200


@HYPOTHESIS
@given(group=numbers, confirm=st.sampled_from(["", "yes"]))
def test_the_seat_burn_group_never_fails(project, group, confirm):
    client = owner_client(project)
    url = reverse("portal:seat_burn", args=[project.pk])
    assert client.post(url, {"group": group, "confirm": confirm}).status_code == 302  # no group: back
    assert client.get(url, {"batch": group}).status_code == 200
