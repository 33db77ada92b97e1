"""A contact's channels: which ones it has, and each one built from the contact and the settings.

The contact's fields (email, phone, robots, webhook, Apprise URL, secrets) arrive sealed from the inventory
and are opened only here, when a delivery is decided or sent; they never reach a log or an event.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import httpx

from certwatch.contracts import contacts as cc
from certwatch.contracts.contacts import sealed_subject
from certwatch.notifier.channels.aliyun_sms import AliyunSms
from certwatch.notifier.channels.apprise_url import AppriseUrl
from certwatch.notifier.channels.base import Channel, Failed
from certwatch.notifier.channels.dingtalk import DingTalk
from certwatch.notifier.channels.email import Email, SmtpPool
from certwatch.notifier.channels.lark import Lark
from certwatch.notifier.channels.sms import TwilioSms
from certwatch.notifier.channels.webhook import Webhook
from certwatch.notifier.channels.wecom import WeCom
from certwatch.notifier.settings import smtp_config
from certwatch.platform.config import Settings
from certwatch.platform.eventlog import Conn, EventLog
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


async def latest_contact(
    conn: Conn, event_log: EventLog, vault: Vault | None, contact_id: str, account_id: str
) -> Contact | None:
    """The contact as its last event left it, read from the log rather than the projection: a test
    message sent right after `contacts add` or a changed secret uses what was just saved."""
    events = await event_log.read_stream(cc.stream_id(contact_id), conn=conn)
    if vault is None or not events or events[-1].type not in (cc.CONTACT_CREATED, cc.CONTACT_UPDATED):
        return None
    saved = cc.ContactSaved.from_data(events[-1].data)
    if saved.account_id != account_id:
        return None
    opened = await vault.open_many(conn, {sealed_subject(contact_id): saved.sealed})
    return opened.get(sealed_subject(contact_id))


# channel -> the sealed contact field that reaches it (the inventory's contact field names).
CHANNEL_FIELDS = {
    "email": "email", "sms": "phone", "dingtalk": "dingtalk_webhook", "wecom": "wecom_webhook",
    "lark": "lark_webhook", "webhook": "webhook_url", "apprise": "apprise_url",
}  # fmt: skip


def channel_names(contact: Contact, settings: Settings) -> list[str]:
    """Every channel the contact has (a missing SMTP server is then a visible failure, not silence),
    except SMS where no gateway is configured."""
    return [name for name, field in CHANNEL_FIELDS.items()
            if contact.get(field) and (name != "sms" or settings.sms_driver)]  # fmt: skip


def build(
    name: str, contact: Contact, settings: Settings, client: httpx.AsyncClient, smtp: SmtpPool | None = None
) -> Channel | Failed:
    """The channel `name` to this contact, or why it cannot be built (a field the vendor would refuse).
    Email goes through `smtp`'s shared connections when given, else over a connection of its own."""
    target = contact.get(CHANNEL_FIELDS.get(name, ""))
    if not target:
        return Failed("contact", f"the contact has no {name} channel")
    try:
        return _build(name, str(target), contact, settings, client, smtp)
    except ValueError as exc:
        return Failed("contact", str(exc))


def _build(
    name: str,
    target: str,
    contact: Contact,
    settings: Settings,
    client: httpx.AsyncClient,
    smtp: SmtpPool | None,
) -> Channel | Failed:
    custom = settings.allow_custom_webhooks
    secret = {"dingtalk": "dingtalk_secret", "lark": "lark_secret", "webhook": "webhook_secret"}.get(name, "")
    key = str(contact.get(secret) or "")
    if name == "email":
        config = smtp_config(settings)
        if config is None:
            return Failed("config", "CERTWATCH_SMTP_HOST is not set: no server to send email through")
        return Email(config, target, smtp if smtp is not None and smtp.config == config else None)
    if name == "sms":
        s = settings
        if not (s.sms_url and s.sms_account and s.sms_token and s.sms_from):
            return Failed("config", "CERTWATCH_SMS_URL, _ACCOUNT, _TOKEN and _FROM are required for SMS")
        if s.sms_driver == "aliyun":
            return AliyunSms(client, s.sms_url, s.sms_account, s.sms_token, s.sms_from, s.sms_template or "", target,
                             allow_custom=custom)  # fmt: skip
        return TwilioSms(
            client, s.sms_url, s.sms_account, s.sms_token, s.sms_from, target, allow_custom=custom
        )
    if name == "dingtalk":
        return DingTalk(client, target, key, allow_custom=custom)
    if name == "wecom":
        return WeCom(client, target, allow_custom=custom)
    if name == "lark":
        return Lark(client, target, key or None, allow_custom=custom)
    if name == "webhook":
        return Webhook(client, target, key, allow_custom=custom)
    return AppriseUrl(target)
