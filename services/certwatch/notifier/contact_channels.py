"""A contact's channels: which ones it has, and each one built from the contact and the settings.

The contact's fields (email, phone, DingTalk robot and secret) arrive sealed from the inventory
and are opened only here, when a delivery is decided or sent; they never reach a log or an event.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import httpx

from certwatch.contracts.contacts import sealed_subject
from certwatch.notifier.channels.apprise_url import AppriseUrl
from certwatch.notifier.channels.base import Channel, Failed
from certwatch.notifier.channels.dingtalk import DingTalk
from certwatch.notifier.channels.email import Email
from certwatch.notifier.channels.sms import TwilioSms
from certwatch.notifier.settings import smtp_config
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import Conn
from certwatch.platform.shredding import Vault

Contact = Mapping[str, Any]


async def open_contacts(conn: Conn, vault: Vault | None, contact_ids: Collection[str]) -> dict[str, Contact]:
    """The fields of each contact that can be opened here (one query each for the rows and the
    keys); a deleted or shredded contact is left out."""
    if vault is None or not contact_ids:
        return {}
    cur = await conn.execute(
        "SELECT contact_id::text, sealed FROM notifier_contacts WHERE contact_id = ANY(%s::uuid[])",
        (list(contact_ids),),
    )
    sealed = {sealed_subject(row[0]): row[1] for row in await cur.fetchall()}
    opened = await vault.open_many(conn, sealed)
    return {subject.removeprefix(sealed_subject("")): fields for subject, fields in opened.items()}


def channel_names(contact: Contact, settings: Settings) -> list[str]:
    """Email, DingTalk and Apprise whenever the contact has them (a missing SMTP server is then a
    visible failure, not silence); SMS only where a gateway is configured."""
    names = []
    if contact.get("email"):
        names.append("email")
    if contact.get("phone") and settings.sms_driver:
        names.append("sms")
    if contact.get("dingtalk_webhook"):
        names.append("dingtalk")
    if contact.get("apprise_url"):
        names.append("apprise")
    return names


def build(name: str, contact: Contact, settings: Settings, client: httpx.AsyncClient) -> Channel | Failed:
    """The channel `name` to this contact, or why it cannot be built."""
    custom = settings.allow_custom_webhooks
    if name == "email":
        config = smtp_config(settings)
        if config is None:
            return Failed("config", "CERTWATCH_SMTP_HOST is not set: no server to send email through")
        return Email(config, str(contact["email"]))
    if name == "dingtalk" and contact.get("dingtalk_webhook"):
        return DingTalk(client, str(contact["dingtalk_webhook"]), str(contact.get("dingtalk_secret") or ""),
                        allow_custom=custom)  # fmt: skip
    if name == "sms" and contact.get("phone"):
        if not (settings.sms_url and settings.sms_account and settings.sms_token and settings.sms_from):
            return Failed("config", "CERTWATCH_SMS_URL, _ACCOUNT, _TOKEN and _FROM are required for SMS")
        return TwilioSms(client, settings.sms_url, settings.sms_account, settings.sms_token, settings.sms_from,
                         str(contact["phone"]), allow_custom=custom)  # fmt: skip
    if name == "apprise" and contact.get("apprise_url"):
        try:
            return AppriseUrl(str(contact["apprise_url"]))
        except ValueError as exc:
            return Failed("contact", str(exc))
    return Failed("contact", f"the contact has no {name} channel")
