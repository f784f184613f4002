"""Out-of-range dates on the date options of the commands and the export download: refused with a
CLI error naming the option (or a 400), never a traceback or a 500. Dates are bounded to
1970-01-01 .. 8999-12-31 UTC (licenses.clock.within_range), checked before any shift to UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
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
        call_command("export_usage", "--license-key", project.license_key, "--what", "usage", option, value,
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
    with pytest.raises(CommandError) as refused:
        call_command("run_job", "rollup_usage", "--now", value, stdout=StringIO())
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
