"""The CSV exports on PostgreSQL: ``COPY (SELECT ...) TO STDOUT (FORMAT csv)`` writes the same
bytes as the Python path (``export_rows`` through ``csv_line``, the reference and SQLite's path)
on every awkward text a device can hold, streamed in chunks, and a download stopped half-way
leaves the connection usable (docs/benchmarks.md, "Pages and exports")."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from devices.models import Device
from tests import factories
from tests.factories import world
from usage import exports

pytestmark = pytest.mark.django_db
NOW = factories.NOW

# Quoted by COPY (comma, quote, CR, LF), empty (COPY writes NULL as nothing but '' as ""), the
# formula guard's starts and the numbers it leaves alone, COPY's own markers (\. \N), unicode.
AWKWARD = [
    "plain", "", " ", "a,b", ",", '"', 'say "hi"', "two\nlines", "cr\ronly", "crlf\r\n", "=1+1", "-12", "-1.5",
    "-x", "+", "@home", "\tTab", "\rlead", "'already", "\\.", "\\N", "NULL", "é ü 漢字 🙂", "-", "1e5", "--1",
]  # fmt: skip


@pytest.fixture
def w():
    with time_machine.travel(NOW, tick=False):
        yield world(NOW)


def _devices(w):
    for k, text in enumerate(AWKWARD):
        factories.DeviceFactory(
            item=w.seats if k % 3 else None, project=w.project, now=NOW, device_uuid=f"u{k}{text}",
            device_name=text, origin=AWKWARD[-1 - k], client_type="web",
            last_seen_at=NOW - timedelta(minutes=k, microseconds=1),  # .999999: truncated, not rounded
        )  # fmt: skip


def _python(w, what, **bounds) -> bytes:
    return "".join(exports.csv_line(r) for r in exports.export_rows(project=w.project, what=what, **bounds)).encode()


def _streamed(w, what, **bounds) -> bytes:
    return b"".join(exports.stream_csv(project=w.project, what=what, **bounds))


def test_every_export_is_the_python_paths_bytes_on_awkward_texts(w):
    _devices(w)
    for what in exports.WHATS:
        assert _streamed(w, what) == _python(w, what), what
        bounded = dict(start=NOW - timedelta(days=1), end=NOW - timedelta(minutes=3))
        assert _streamed(w, what, **bounded) == _python(w, what, **bounded), what


def test_the_devices_lines_are_quoted_guarded_and_truncated_as_written(w):
    _devices(w)
    body = _streamed(w, "devices").decode()
    lines = {line.split(",", 1)[0]: line for line in body.split("\n") if line.startswith("u")}
    assert lines["u1"].split(",")[4] == ""  # an empty name: nothing, not ""
    assert ',"a,b",' in body and ',"say ""hi""",' in body and ',"two\nlines",' in body and ',"cr\ronly",' in body
    assert ",'=1+1," in body and ",-12," in body and ",-1.5," in body and ",'-x," in body and ",'@home," in body
    assert ",'\tTab," in body and ",\\.," in body and ",\\N," in body and ",NULL," in body and ",é ü 漢字 🙂," in body
    seen = Device.objects.get(device_uuid="u0plain").last_seen_at
    assert seen.microsecond == 999_999 and f",{seen.replace(microsecond=0):%Y-%m-%dT%H:%M:%SZ}," in lines["u0plain"]
    assert lines["u0plain"].split(",")[1] == ""  # no item: an empty cell


def test_postgresql_exports_through_copy_in_chunks(w, postgres_only, monkeypatch):
    _devices(w)
    copied: list[str] = []
    real = exports._copy
    monkeypatch.setattr(exports, "_copy", lambda select, params: copied.append(select) or real(select, params))
    monkeypatch.setattr(exports, "COPY_CHUNK", 200)
    chunks = list(exports.stream_csv(project=w.project, what="devices"))
    assert len(copied) == 1 and copied[0].startswith("SELECT ")
    assert len(chunks) > 5 and all(len(c) >= 200 for c in chunks[1:-1])  # header, full chunks, the rest
    assert b"".join(chunks) == _python(w, "devices")


def test_a_download_stopped_half_way_leaves_the_connection_usable(w, postgres_only, monkeypatch):
    _devices(w)
    monkeypatch.setattr(exports, "COPY_CHUNK", 100)
    stream = exports.stream_csv(project=w.project, what="devices")
    next(stream), next(stream)  # the header and the first chunk of the COPY
    stream.close()  # what Django does when the client goes away
    assert Device.objects.filter(project=w.project).count() > len(AWKWARD)
    assert _streamed(w, "devices") == _python(w, "devices")
