"""Long names in the admin's change lists (docs/portal.md, long names): a cell whose text is long
is cut to one line with an ellipsis (static/css/admin.css) and carries its full text as its
``title``, so a 255-character device name or a 128-character license id neither widens the list
nor hides the other columns; the change form shows the whole value.

Applied to the cells Django's ``result_list`` renders (templates/admin/change_list_results.html),
for every model's list at once."""

from __future__ import annotations

import html
import re

from django import template
from django.utils.html import escape, strip_tags
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

LONG = 24  # characters: a shorter cell is left as it is
_CELL = re.compile(r"^<(td|th)([^>]*)>(.*)</\1>$", re.DOTALL)


@register.filter
def cut_cell(cell: str) -> SafeString | str:
    """``<td ...>inner</td>`` (already rendered and escaped by the admin) with the inner HTML in a
    one-line ``span.cut`` and the cell's plain text as its title, when that text is long."""
    match = _CELL.match(str(cell).strip())
    if match is None:
        return cell
    tag, attributes, inner = match.groups()
    text = " ".join(html.unescape(strip_tags(inner)).split())
    if len(text) <= LONG or "title=" in attributes:
        return cell
    return mark_safe(f'<{tag}{attributes} title="{escape(text)}"><span class="cut">{inner}</span></{tag}>')
