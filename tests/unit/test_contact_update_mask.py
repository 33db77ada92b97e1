"""`UpdateContact` with a field mask changes only the fields named (pure merge, no I/O)."""

from __future__ import annotations

import pytest

from certwatch.inventory.contact_use_cases import ContactInput, merged_update
from certwatch.inventory.contacts import Contact
from certwatch.platform.errors import InvalidArgument

HOOK = "https://oapi.dingtalk.com/robot/send?access_token=abcdefghijklmnop"
STORED = Contact("Ops", None, "ops@example.com", HOOK, "SECabc")


def _fields(merged: ContactInput) -> tuple[str, str, str, str, str]:
    return (merged.name, merged.phone, merged.email, merged.dingtalk_webhook, merged.dingtalk_secret)


def test_only_masked_fields_change() -> None:
    given = ContactInput(name="Ops 2", phone="+8613800138000")
    assert _fields(merged_update(STORED, given, ["name", "phone"])) == (
        "Ops 2", "+8613800138000", "ops@example.com", HOOK, "SECabc",
    )  # fmt: skip


def test_a_masked_empty_field_is_cleared_and_a_cleared_webhook_takes_its_secret() -> None:
    assert _fields(merged_update(STORED, ContactInput(), ["email"]))[2] == ""
    assert _fields(merged_update(STORED, ContactInput(), ["dingtalk_webhook"]))[3:] == ("", "")


def test_without_a_mask_every_field_is_replaced_but_an_empty_secret_is_kept() -> None:
    given = ContactInput(name="New", dingtalk_webhook=HOOK)
    assert _fields(merged_update(STORED, given, [])) == ("New", "", "", HOOK, "SECabc")


def test_an_unknown_path_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(
        InvalidArgument, match=r"update_mask: unknown field.* mail; valid: name, phone, email"
    ):
        merged_update(STORED, ContactInput(), ["mail"])
