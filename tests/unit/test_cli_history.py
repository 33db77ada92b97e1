"""`certwatch domains history`: intervals as a user reads them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from certwatch.cli.details import duration_text, interval_rows
from certwatch.cli.main import build_parser
from certwatch.v1 import classifier_pb2 as pb


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (45.9, "45s"),
        (450, "7m 30s"),
        (7500, "2h 5m"),
        (7200, "2h"),
        (3 * 86_400 + 4 * 3600 + 59, "3d 4h"),
    ],
)
def test_durations_show_their_two_largest_units(seconds: float, text: str) -> None:
    assert duration_text(seconds) == text


def test_the_open_interval_runs_to_now() -> None:
    closed = pb.StatusInterval(status="SECURE", duration_seconds=600)
    closed.started_at.FromDatetime(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    closed.ended_at.FromDatetime(datetime(2026, 6, 1, 12, 10, tzinfo=UTC))
    current = pb.StatusInterval(status="ABNORMAL", causes=["EXPIRED", "CERTIFICATE_MISMATCH"], open=True,
                                duration_seconds=90_000, started_at=closed.ended_at)  # fmt: skip
    assert interval_rows([current, closed]) == [
        ["2026-06-01T12:10:00", "now", "1d 1h so far", "ABNORMAL", "EXPIRED,CERTIFICATE_MISMATCH"],
        ["2026-06-01T12:00:00", "2026-06-01T12:10:00", "10m", "SECURE", "-"],
    ]


def test_a_limit_out_of_range_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        build_parser().parse_args(["domains", "history", "x", "--limit", "0"])
    assert (
        raised.value.code == 2
        and "--limit: must be a whole number from 1 to 100000" in capsys.readouterr().err
    )
