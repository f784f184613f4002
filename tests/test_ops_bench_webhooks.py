"""make bench's webhook figure (client/tools/bench_webhooks.py): every request of the runs is
refused and writes its decision, an endpoint subscribed to devices.refused adds no statement,
the delivery step coalesces the refusals into one event, and the doc writer replaces only its
own section."""

from __future__ import annotations

import pytest

from client.tools import bench_webhooks
from devices.models import Decision
from licenses.models import WebhookEndpoint
from usage.webhooks.models import WebhookDelivery


# hotpath opens a fresh connection per row: outside a test transaction.
@pytest.mark.django_db(transaction=True)
def test_refused_runs_with_and_without_an_endpoint_cost_the_same_statements(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    from django.utils import timezone

    started = timezone.now()
    world = bench_webhooks.create_world(started)
    runs = bench_webhooks.in_process(world, 4)
    assert [r["subscribed"] for r in runs] == list(bench_webhooks.ORDER)
    assert all(set(r["statuses"]) == {403} for r in runs), [r["statuses"] for r in runs]
    assert len({r["statements"] for r in runs}) == 1  # the endpoint adds no statement
    assert WebhookEndpoint.objects.filter(organization=world["org"]).count() == 1  # the last run's
    assert Decision.objects.filter(item=world["item"], allowed=False).count() == 4 * len(runs)

    after = bench_webhooks.coalesce(world, started)
    # One event per 10-minute window the refusals fell in (one, unless the run crossed a boundary).
    assert after["refused"] == after["counted"] == 4 * len(runs)
    assert after["events"] == after["deliveries"] == after["windows"] >= 1
    assert sum(d.event.data["count"] for d in WebhookDelivery.objects.all()) == 4 * len(runs)


def test_it_compares_medians_with_the_noise_of_one_side():
    runs = [
        {"subscribed": False, "rps": 100.0},
        {"subscribed": True, "rps": 99.0},
        {"subscribed": True, "rps": 103.0},
        {"subscribed": False, "rps": 96.0},
        {"subscribed": False, "rps": 104.0},
        {"subscribed": True, "rps": 101.0},
    ]
    got = bench_webhooks.compare(runs, "rps")
    assert got["without"] == 100.0 and got["with"] == 101.0 and got["ratio"] == pytest.approx(1.01)
    assert got["noise"] == pytest.approx(0.08)  # without: (104 - 96) / 100
    assert bench_webhooks._verdict(got) == "is within the noise (1.010, ±8.0 %)"


def test_its_verdict_says_which_figure_is_outside_the_noise_and_which_way():
    """Under load and in-process are judged apart: one outside the noise does not make the
    other so (a run once read "OUTSIDE" for a 0.998 ratio under load)."""
    assert bench_webhooks._verdict({"ratio": 0.998, "noise": 0.044}).startswith("is within the noise")
    assert bench_webhooks._verdict({"ratio": 0.794, "noise": 0.191}) == "is lower, OUTSIDE the noise (0.794, ±19.1 %)"
    assert bench_webhooks._verdict({"ratio": 1.059, "noise": 0.033}).startswith("is higher, OUTSIDE")


def test_it_replaces_only_its_own_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\n## API\n\napi table\n\n## Webhooks and the device API\n\nold\n\n## Jobs\n\njobs\n")
    bench_webhooks.write_doc("| new |\n", doc)
    text = doc.read_text()
    assert "old" not in text and "| new |" in text and "api table" in text and text.endswith("## Jobs\n\njobs\n")
    doc.write_text("# Benchmarks\n\n## API\n\napi table\n")
    bench_webhooks.write_doc("| t |\n", doc)
    assert doc.read_text().index("## API") < doc.read_text().index("## Webhooks and the device API")
