"""Account and API key handlers: admins create accounts; anyone manages their own keys."""

from __future__ import annotations

from typing import Any

import psycopg

from certwatch.inventory.quota_api import parse_account_id, require_admin
from certwatch.platform import auth
from certwatch.platform.errors import AlreadyExists, InvalidArgument, NotFound
from certwatch.platform.eventlog import EventLog
from certwatch.v1 import inventory_pb2 as pb

MAX_ACCOUNT_NAME = 128


class AccountHandlers:
    _log: EventLog

    async def CreateAccount(self, request: pb.CreateAccountRequest, context: Any) -> pb.CreateAccountResponse:
        require_admin()
        name = request.name.strip()
        if not name or len(name) > MAX_ACCOUNT_NAME:
            raise InvalidArgument([("name", f"1 to {MAX_ACCOUNT_NAME} characters")])
        try:
            account_id, key = await auth.create_account(
                self._log.pool, name, role="admin" if request.admin else "user"
            )
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"an account named {name!r} exists") from None
        return pb.CreateAccountResponse(account_id=str(account_id), api_key=key)

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: Any) -> pb.CreateApiKeyResponse:
        principal = auth.current()
        account_id = principal.account_id
        if request.account_id and parse_account_id(request.account_id) != account_id:
            require_admin()
            account_id = parse_account_id(request.account_id)
        async with self._log.pool.connection() as conn:
            cur = await conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,))
            if await cur.fetchone() is None:
                raise NotFound(f"no account {account_id}")
        key = await auth.issue_key(self._log.pool, account_id)
        return pb.CreateApiKeyResponse(key_id=auth.parse(key)[0], api_key=key)

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: Any) -> pb.RevokeApiKeyResponse:
        if not await auth.revoke_key(self._log.pool, request.key_id, auth.current()):
            raise NotFound(f"no active key {request.key_id!r} in this account")
        return pb.RevokeApiKeyResponse()
