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


def test_robot_secrets_and_the_apprise_url_are_kept_like_the_dingtalk_secret() -> None:
    stored = Contact("Ops", None, None, lark_webhook="https://open.feishu.cn/open-apis/bot/v2/hook/abcdefgh",
                     lark_secret="larksecret", webhook_url="https://h.example/x", webhook_secret="w" * 16,
                     apprise_url="ntfy://topic")  # fmt: skip
    unmasked = merged_update(stored, ContactInput(name="Ops", lark_webhook=stored.lark_webhook or ""), [])
    assert (unmasked.lark_secret, unmasked.webhook_secret, unmasked.apprise_url) == (
        "larksecret",
        "",
        "ntfy://topic",
    )
    cleared = merged_update(stored, ContactInput(), ["webhook_url"])
    assert (cleared.webhook_url, cleared.webhook_secret, cleared.lark_secret) == ("", "", "larksecret")
    assert merged_update(stored, ContactInput(), ["apprise_url"]).apprise_url == ""
