"""Every error code of the VOD API is in the README's table, with its status, and nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

from certwatch.vod.errors import CODES


def test_the_readme_table_is_the_code_table() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## VOD certificate API", 1)[1].split("\n## ", 1)[0]
    rows = {
        m[1]: (int(m[2]), m[3]) for m in re.finditer(r"^\| `([\w.]+)` \| (\d{3}) \| (.+) \|$", section, re.M)
    }
    assert rows == CODES
