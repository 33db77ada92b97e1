"""The Inventory gRPC service: domains, contacts, quota and accounts of the caller's account.

Every handler works inside the caller's account (`auth.current()`); ids from another account
answer NOT_FOUND, exactly as ids that do not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from certwatch.inventory.account_use_cases import AccountUseCases
from certwatch.inventory.accounts_api import AccountHandlers
from certwatch.inventory.contact_use_cases import ContactUseCases
from certwatch.inventory.domain_use_cases import DomainUseCases
from certwatch.inventory.domains_api import DomainHandlers
from certwatch.inventory.quota_api import QuotaHandlers
from certwatch.inventory.quota_use_cases import QuotaUseCases
from certwatch.platform.eventlog import EventLog
from certwatch.platform.shredding import Vault
from certwatch.v1 import inventory_pb2_grpc


class InventoryApi(DomainHandlers, QuotaHandlers, AccountHandlers, inventory_pb2_grpc.InventoryServicer):
    def __init__(
        self, event_log: EventLog, vault: Vault, *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        allow_custom_webhooks: bool = False,
        probe_interval_s: float = 300.0,
    ) -> None:  # fmt: skip
        self._contacts = ContactUseCases(event_log, vault, allow_custom_webhooks=allow_custom_webhooks)
        self._quota = QuotaUseCases(event_log, clock=clock)
        self._accounts = AccountUseCases(event_log)
        self._domains = DomainUseCases(
            event_log, self._contacts.resolve, clock=clock, stale_after_s=2 * probe_interval_s
        )


def registration(api: InventoryApi) -> tuple[Any, Any, str]:
    return (inventory_pb2_grpc.add_InventoryServicer_to_server, api, "certwatch.v1.Inventory")
