"""Every error code of the VOD API is in the README's table, with its status, and nothing else is."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import alibabacloud_vod20170321.client as vod_client

from certwatch.vod.errors import CODES
from certwatch.vod.http_api import actions
from certwatch.vod.sdk_actions import SDK_ACTIONS


def test_the_readme_table_is_the_code_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## VOD certificate API", 1)[1].split("\n## ", 1)[0]
    rows = {
        m[1]: (int(m[2]), m[3]) for m in re.finditer(r"^\| `([\w.]+)` \| (\d{3}) \| (.+) \|$", section, re.M)
    }
    assert rows == CODES


def test_the_vod_actions_are_the_sdks() -> None:
    client = Path(vod_client.__file__).read_text()
    assert set(re.findall(r"action = '(\w+)'", client)) == SDK_ACTIONS
    assert set(actions(cast(Any, None), cast(Any, None))) <= SDK_ACTIONS  # every served action is one of them
