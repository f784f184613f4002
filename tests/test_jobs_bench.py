from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from devices.models import Device
from usage.models import UsageReport


@pytest.mark.django_db
def test_it_refuses_sqlite_with_a_clear_message():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite refusal")
    with pytest.raises(CommandError, match="needs PostgreSQL.*dls_bench"):
        call_command("bench_jobs", "--scale", "0.001")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
@pytest.mark.slow
def test_it_times_every_job_against_bare_sql_at_a_tiny_scale(postgres_only):
    out = StringIO()
    call_command("bench_jobs", "--scale", "0.001", "--rounds", "1", stdout=out)
    text = out.getvalue()

    assert text.startswith("machine: ") and "CPUs (nproc)" in text and "PostgreSQL 1" in text
    assert "device 10,000, usagereport 10,000, usagecount 10,000, slotdevice 10,000" in text
    table = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| job ")]
    assert [row.split("|")[1].strip() for row in table] == [
        "expire_idle_devices",
        "rollup_concurrency",
        "rollup_usage",
        "rollup_concurrency, 1 % late",
        "rollup_usage, 1 % late",
        "send_usage_alerts",
        "purge_old_data",
    ]
    for row in table:
        job_s, bare_s, ratio = (float(cell) for cell in row.split("|")[2:5])
        assert job_s > 0 and bare_s > 0 and ratio > 0
    # The jobs did their work on the generated data before it was restored.
    assert "'expired': 1000" in text and "'usagereport': 1000" in text and "'slots_rolled': 100" in text
    # And it cleans up after itself.
    assert Device.objects.count() == 0 and UsageReport.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_a_database_that_is_not_a_bench_or_test_one(postgres_only, settings):
    connection.settings_dict["NAME"], name = "dls_production", connection.settings_dict["NAME"]
    try:
        with pytest.raises(CommandError, match="refusing database 'dls_production'"):
            call_command("bench_jobs", "--scale", "0.001")
    finally:
        connection.settings_dict["NAME"] = name
