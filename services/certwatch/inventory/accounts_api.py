"""Account and API key RPCs of the Inventory API: a thin adapter from gRPC messages to the
use cases (`account_use_cases`) and back. Nothing here decides anything."""

from __future__ import annotations

from typing import Any

from certwatch.inventory import account_use_cases as au
from certwatch.platform import auth
from certwatch.v1 import inventory_pb2 as pb


class AccountHandlers:
    _accounts: au.AccountUseCases

    async def CreateAccount(self, request: pb.CreateAccountRequest, context: Any) -> pb.CreateAccountResponse:
        issued = await self._accounts.create_account(auth.current(), request.name, admin=request.admin)
        return pb.CreateAccountResponse(account_id=str(issued.account_id), api_key=issued.api_key)

    async def CreateApiKey(self, request: pb.CreateApiKeyRequest, context: Any) -> pb.CreateApiKeyResponse:
        issued = await self._accounts.create_api_key(auth.current(), request.account_id)
        return pb.CreateApiKeyResponse(key_id=issued.key_id, api_key=issued.api_key)

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: Any) -> pb.RevokeApiKeyResponse:
        await self._accounts.revoke_api_key(auth.current(), request.key_id)
        return pb.RevokeApiKeyResponse()
