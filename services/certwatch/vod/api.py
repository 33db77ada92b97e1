"""The Vod gRPC API: the caller's account's AccessKey pairs for the VOD HTTP endpoint.

Every call is scoped to the caller's account (`auth.current()`): another account's key
answers exactly like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from certwatch.platform import auth
from certwatch.platform.errors import NotFound
from certwatch.platform.shredding import Vault
from certwatch.v1 import vod_pb2 as pb
from certwatch.v1 import vod_pb2_grpc
from certwatch.vod import access_keys


def _info(key: access_keys.KeyInfo) -> pb.AccessKeyInfo:
    out = pb.AccessKeyInfo(access_key_id=key.access_key_id)
    out.created_at.FromDatetime(key.created_at)
    if key.revoked_at is not None:
        out.revoked_at.FromDatetime(key.revoked_at)
    return out


class VodApi(vod_pb2_grpc.VodServicer):
    def __init__(self, pool: AsyncConnectionPool[Any], vault: Vault) -> None:
        self._pool, self._vault = pool, vault

    async def CreateAccessKey(self, request: pb.CreateAccessKeyRequest, context: Any) -> pb.CreatedAccessKey:
        key = await access_keys.create(self._pool, self._vault, auth.current().account_id)
        return pb.CreatedAccessKey(access_key_id=key.access_key_id, access_key_secret=key.access_key_secret)

    async def ListAccessKeys(self, request: pb.ListAccessKeysRequest, context: Any) -> pb.AccessKeyList:
        keys = await access_keys.list_keys(self._pool, auth.current().account_id)
        return pb.AccessKeyList(keys=[_info(k) for k in keys])

    async def RevokeAccessKey(self, request: pb.RevokeAccessKeyRequest, context: Any) -> pb.AccessKeyInfo:
        revoked = await access_keys.revoke(self._pool, auth.current().account_id, request.access_key_id)
        if revoked is None:
            raise NotFound(f"no live AccessKey {request.access_key_id!r} in this account")
        return _info(revoked)


def registration(api: VodApi) -> tuple[Any, Any, str]:
    return (vod_pb2_grpc.add_VodServicer_to_server, api, "certwatch.v1.Vod")
