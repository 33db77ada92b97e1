"""A service's `Vault` from its settings, and the rewrap of its data keys after a rotation.

Every service that seals or opens data builds its Vault here, so each reads the previous
master keys (`CERTWATCH_PREVIOUS_MASTER_KEYS`) and none is left unable to open what was
sealed before a rotation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from certwatch.platform.config import ConfigError
from certwatch.platform.service import Runtime
from certwatch.platform.shredding import Vault, parse_master_key

log = logging.getLogger(__name__)


async def service_vault(rt: Runtime, *, needs_it_for: str, rewrap: Sequence[str] = ()) -> Vault:
    """The Vault under `CERTWATCH_MASTER_KEY` (required: the service `needs_it_for` something)
    that also opens what the previous master keys wrapped.

    With previous keys set, the data keys of subjects starting with a `rewrap` prefix (those
    this service seals) that a previous key wrapped are rewrapped under the current key before
    the service starts, and a log line says how many: once every sealing service has logged
    it, the previous keys can be dropped.
    """
    s = rt.settings
    if not s.master_key:
        raise ConfigError(
            f"CERTWATCH_MASTER_KEY is required by {rt.name} (32 bytes, base64; {needs_it_for};"
            " `make run` writes one to var/master.key)"
        )
    vault = Vault(parse_master_key(s.master_key), s.previous_master_keys)
    if s.previous_master_keys and rewrap:
        async with rt.pool.connection() as conn:
            rewrapped = [await vault.rotate(conn, prefix=prefix) for prefix in rewrap]
        log.info("%s: %d data keys rewrapped under the current master key", rt.name, sum(rewrapped))
    return vault
