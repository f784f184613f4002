import pytest
from django.core.exceptions import ValidationError

from licenses import rules
from tests import factories


@pytest.mark.django_db
def test_it_refuses_an_item_that_breaks_the_table_on_save():
    with pytest.raises(ValidationError) as e:
        factories.LicenseItemFactory(per_page=True, product="dbr")
    assert "per_page applies only to dwt" in str(e.value)


def test_it_floors_the_seat_grace():
    assert rules.applicability_error("dbr", "per_server", edition="server") is None
