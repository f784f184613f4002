"""Properties of origin normalization over arbitrary input: only ValueError, and idempotent."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from licenses.domains import domain_matches, normalize_origin, origin_host

label = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?", fullmatch=True)
unicode_label = st.text(st.characters(codec="utf-8", categories=["Ll", "Lu", "Lo", "Nd"]), min_size=1, max_size=8)
host = st.lists(st.one_of(label, unicode_label), min_size=1, max_size=4).map(".".join)
origin_like = st.builds(
    lambda scheme, h, port, dot: f"{scheme}://{h}{'.' if dot else ''}{port}",
    st.sampled_from(["http", "https", "HTTPS", "capacitor"]),
    host,
    st.one_of(st.just(""), st.integers(0, 70000).map(lambda p: f":{p}")),
    st.booleans(),
)
anything = st.one_of(st.text(max_size=60), origin_like, st.builds(lambda a, b: a + b, origin_like, st.text(max_size=5)))


@settings(max_examples=300, deadline=None, database=None)
@given(anything)
def test_it_raises_only_value_error_and_is_idempotent(raw):
    try:
        normalized = normalize_origin(raw)
    except ValueError:
        return
    assert normalize_origin(normalized) == normalized
    assert normalized == normalized.lower() and normalized.isascii()
    assert not (normalized.startswith("http://") and normalized.endswith(":80"))
    assert not (normalized.startswith("https://") and normalized.endswith(":443"))
    assert domain_matches(origin_host(normalized), normalized, multi_tenant=[])


@settings(max_examples=150, deadline=None, database=None)
@given(anything, anything)
def test_matching_never_raises(item_domain, origin):
    assert domain_matches(item_domain, origin, multi_tenant=[]) in (True, False)
