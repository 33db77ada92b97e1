"""The VOD API's settings are platform Settings, read from CERTWATCH_VOD_*."""

from __future__ import annotations

import pytest

from certwatch.platform.config import ConfigError, load


def test_defaults_and_overrides() -> None:
    d = load({})
    assert (d.vod_http_port, d.vod_region, d.vod_cname_suffix, d.vod_rate, d.vod_burst) == (
        8080, "cn-shanghai", None, 20.0, 40,
    )  # fmt: skip
    s = load({"CERTWATCH_VOD_HTTP_PORT": "9090", "CERTWATCH_VOD_REGION": "cn-beijing",
              "CERTWATCH_VOD_RATE": "2.5", "CERTWATCH_VOD_CNAME_SUFFIX": " CDN.Example.Net. "})  # fmt: skip
    assert (s.vod_http_port, s.vod_region, s.vod_cname_suffix, s.vod_rate, s.vod_burst) == (
        9090, "cn-beijing", "cdn.example.net", 2.5, 40,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("env", "name"),
    [({"CERTWATCH_VOD_HTTP_PORT": "x"}, "CERTWATCH_VOD_HTTP_PORT"),
     ({"CERTWATCH_VOD_HTTP_PORT": "70000"}, "CERTWATCH_VOD_HTTP_PORT"),
     ({"CERTWATCH_VOD_RATE": "0"}, "CERTWATCH_VOD_RATE"), ({"CERTWATCH_VOD_RATE": "-1"}, "CERTWATCH_VOD_RATE"),
     ({"CERTWATCH_VOD_BURST": "0"}, "CERTWATCH_VOD_BURST")],
)  # fmt: skip
def test_unusable_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load(env)
