"""The inventory's account use cases, apart from any transport (see `domain_use_cases`):
admins create accounts; anyone manages their own API keys (an admin anyone's). Refusals
are the platform's errors, mapped once for every transport (`platform.error_codes`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg

from certwatch.inventory.quota_use_cases import parse_account_id, require_account, require_admin
from certwatch.platform import auth
from certwatch.platform.errors import AlreadyExists, InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog

MAX_ACCOUNT_NAME = 128


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """An API key, shown once: only its hash is stored."""

    account_id: uuid.UUID
    key_id: str
    api_key: str


class AccountUseCases:
    def __init__(self, event_log: EventLog) -> None:
        self._log = event_log

    async def create_account(self, principal: auth.Principal, name: str, *, admin: bool = False) -> IssuedKey:
        """Admins only: a new account (names are unique) and its first key."""
        require_admin(principal)
        name = name.strip()
        if not name or len(name) > MAX_ACCOUNT_NAME:
            raise InvalidArgument([("name", f"1 to {MAX_ACCOUNT_NAME} characters")])
        try:
            account_id, key = await auth.create_account(
                self._log.pool, name, role="admin" if admin else "user"
            )
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"an account named {name!r} exists") from None
        return IssuedKey(account_id, auth.parse(key)[0], key)

    async def create_api_key(self, principal: auth.Principal, account_id: str = "") -> IssuedKey:
        """A new key for the caller's account, or (admins only) for `account_id`'s."""
        target = principal.account_id
        if account_id and parse_account_id(account_id) != target:
            require_admin(principal)
            target = parse_account_id(account_id)
        async with self._log.pool.connection() as conn:
            await require_account(conn, target)
        key = await auth.issue_key(self._log.pool, target)
        return IssuedKey(target, auth.parse(key)[0], key)

    async def revoke_api_key(self, principal: auth.Principal, key_id: str) -> None:
        if not await auth.revoke_key(self._log.pool, key_id, principal):
            raise NotFound(f"no active key {key_id!r} in this account")
