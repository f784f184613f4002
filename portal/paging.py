"""Pagination for lists as long as a fleet (docs/benchmarks.md, "Pages and exports").

Django's ``Paginator`` runs ``COUNT(*)`` over the whole filtered list on every page; for a project
of 100,000 devices that count costs more than the page. ``CappedPaginator`` reads the page (one
row more, to know whether a next page exists) and counts at most ``cap`` + 1 rows: past the cap
the page says "more than" (``more``), and any page number can still be opened. A page runs the
same two queries whatever the size of the list (tests/test_portal_queries.py), and the last
page only the first: its rows say how long the list is."""

from __future__ import annotations

from typing import Any

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property

COUNT_CAP = 10_000
MAX_OFFSET = 2**62  # rows skipped at most: ?page=10**20 shows the last page, not a 500


def other_parameters(request: HttpRequest) -> str:
    """The request's GET parameters but the page number, urlencoded: what the page links of
    templates/partials/pagination.html keep (the filters of the list)."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


class CappedPage(Page):
    def __init__(self, object_list: Any, number: int, paginator: CappedPaginator, *, has_next: bool) -> None:
        super().__init__(object_list, number, paginator)
        self._has_next = has_next

    def has_next(self) -> bool:
        return self._has_next


class CappedPaginator(Paginator):
    def __init__(self, object_list: QuerySet[Any], per_page: int, *, cap: int | None = None) -> None:
        super().__init__(object_list, per_page)
        self.queryset = object_list  # a queryset, to count it capped
        self.cap = COUNT_CAP if cap is None else cap
        self.more = False  # more rows than the cap: the count shown is "more than"

    @cached_property
    def count(self) -> int:
        n = self.queryset.order_by()[: self.cap + 1].count()  # the order does not change a count
        self.more = n > self.cap
        return min(n, self.cap)

    def validate_number(self, number: Any) -> int:
        """A page number >= 1; whether it is past the end shows when its page comes back empty."""
        try:
            if isinstance(number, float) and not number.is_integer():
                raise ValueError
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        if (number - 1) * self.per_page > MAX_OFFSET:  # an OFFSET past 64 bits: PostgreSQL refuses it
            raise EmptyPage("That page number is past the end")
        return number

    def page(self, number: Any) -> CappedPage:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        has_next = len(rows) > self.per_page
        rows = rows[: self.per_page]
        if not rows and number > 1:
            raise EmptyPage("That page contains no results")
        if not has_next and "count" not in self.__dict__:
            # The last page: the list's length is known without counting (a search that
            # fits on one page runs one query, not two).
            n = bottom + len(rows)
            self.more = n > self.cap
            self.__dict__["count"] = min(n, self.cap)
        return CappedPage(rows, number, self, has_next=has_next)

    def get_page(self, number: Any) -> CappedPage:
        try:
            return self.page(number)
        except PageNotAnInteger:
            return self.page(1)
        except EmptyPage:
            return self.page(max(1, self.num_pages))
