from __future__ import annotations

import pytest

from certwatch.vod.http_api import ConfigError, HttpSettings


def test_defaults_and_overrides() -> None:
    assert HttpSettings.from_env({}) == HttpSettings(8080, "cn-shanghai", 20.0, 40)
    env = {
        "CERTWATCH_VOD_HTTP_PORT": "9090",
        "CERTWATCH_VOD_REGION": "cn-beijing",
        "CERTWATCH_VOD_RATE": "2.5",
    }
    assert HttpSettings.from_env(env) == HttpSettings(9090, "cn-beijing", 2.5, 40)


@pytest.mark.parametrize(
    "env", [{"CERTWATCH_VOD_HTTP_PORT": "x"}, {"CERTWATCH_VOD_RATE": "0"}, {"CERTWATCH_VOD_BURST": "0"}]
)
def test_unusable_values_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="CERTWATCH_VOD_"):
        HttpSettings.from_env(env)
