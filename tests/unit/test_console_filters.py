"""The console's domain list filters offer what the list can hold."""

from __future__ import annotations

from certwatch.console import domain_pages
from certwatch.inventory.list_statuses import LIST_STATUSES
from certwatch.rules.causes import Cause


def test_the_filters_offer_every_status_and_cause_of_the_list() -> None:
    """A disabled domain could not be filtered for in the console (DISABLED was missing)
    while `certwatch domains list --status DISABLED` found it."""
    assert sorted(domain_pages.STATUSES) == sorted(LIST_STATUSES)
    assert sorted(domain_pages.CAUSES) == sorted(Cause)
