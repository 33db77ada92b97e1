"""Alert contacts, appended by the inventory on `contact-<contact id>` streams.

Only ciphertext travels: `sealed` is the contact's fields sealed with its own data key
(crypto-shredding), so shredding the key makes every copy unreadable.
"""

from __future__ import annotations

from typing import ClassVar

from certwatch.contracts.payload import Category, Payload

STREAM = Category("contact")
stream_id = STREAM.stream_id

CONTACT_CREATED = "ContactCreated"
CONTACT_UPDATED = "ContactUpdated"
CONTACT_DELETED = "ContactDeleted"
CONTACT_EVENTS = (CONTACT_CREATED, CONTACT_UPDATED, CONTACT_DELETED)


SEALED_PREFIX = "contact:"  # of every contact's vault subject


def sealed_subject(contact_id: str) -> str:
    """The vault subject `sealed` is bound to: whoever holds the master key opens it with this."""
    return f"{SEALED_PREFIX}{contact_id}"


class ContactSaved(Payload, frozen=True, kw_only=True):
    contact_id: str
    account_id: str
    sealed: str
    has_secret: bool


class ContactCreated(ContactSaved, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = CONTACT_CREATED


class ContactUpdated(ContactSaved, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = CONTACT_UPDATED


class ContactDeleted(Payload, frozen=True, kw_only=True):
    TYPE: ClassVar[str] = CONTACT_DELETED
    contact_id: str
    account_id: str
