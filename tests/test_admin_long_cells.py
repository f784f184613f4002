"""dls_admin.templatetags.admin_cells: a long admin list cell is cut to one line with its full
text as its title, escaped (the browser test, tests/test_browser_admin_long_names.py, checks the
pages at 1366 and 390 px)."""

from __future__ import annotations

import pytest
from django.utils.html import escape

from dls_admin.templatetags.admin_cells import LONG, cut_cell
from tests import factories
from tests.factories import NOW, staff_client, world

HOSTILE = '"><script>alert(1)</script> ' + "x" * 40


def test_a_long_cell_is_cut_with_its_full_text_as_its_title():
    cell = '<td class="field-device_name"><a href="/admin/x/">Reception kiosk in the north building &amp; more</a></td>'
    out = cut_cell(cell)
    assert out == (
        '<td class="field-device_name" title="Reception kiosk in the north building &amp; more">'
        '<span class="cut"><a href="/admin/x/">Reception kiosk in the north building &amp; more</a></span></td>'
    )


def test_short_cells_checkboxes_and_other_markup_are_left_alone():
    short = "<td>" + "y" * LONG + "</td>"
    checkbox = '<td class="action-checkbox"><input type="checkbox" name="_selected_action" value="1"></td>'
    assert cut_cell(short) == short
    assert cut_cell(checkbox) == checkbox
    assert cut_cell("not a cell") == "not a cell"


def test_a_hostile_name_stays_escaped_in_the_title():
    out = str(cut_cell(f"<td>{escape(HOSTILE)}</td>"))
    assert "<script>" not in out
    assert f'title="{escape(HOSTILE)}"' in out


@pytest.mark.django_db
def test_the_device_list_cuts_a_255_character_name_and_escapes_a_hostile_one():
    w = world(NOW)
    long_name = ("Reception kiosk in the north building, second floor, " * 6)[:255]
    factories.DeviceFactory(item=w.seats, now=NOW, device_name=long_name)
    factories.DeviceFactory(item=w.seats, now=NOW, device_name=HOSTILE)
    client, _ = staff_client()
    page = client.get("/admin/devices/device/").content.decode()
    assert f'title="{long_name}"><span class="cut">{long_name}</span>' in page
    assert "<script>alert(1)" not in page and f'title="{escape(HOSTILE)}"' in page
    assert "css/admin.css" in page
