"""The alert rules, dashboard and Collector config the chart ships: valid for their tools, and
about metrics the code really emits.

`promtool` (Debian's prometheus package, installed by `make deps`) checks the rules as the
chart renders them and runs their unit tests (files/alert-rules-test.yaml).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import helm_python as helm
import yaml

from tests.unit.test_packaging import CHART, ROOT

FILES = CHART / "files"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
# OpenTelemetry unit -> the suffix the Collector's prometheus exporter adds (annotations such as
# `{event}` add none); a counter then gets `_total`.
_UNIT = {"ms": "_milliseconds", "d": "_days"}
_DEFAULT_UNIT = {"counter": "1", "observable_counter": "1", "histogram": "ms", "gauge": "1"}
_INSTRUMENT = re.compile(
    r'\b(counter|observable_counter|histogram|gauge)\(\s*"(certwatch\.[a-z_.]+)"(?:,\s*(?:unit=)?"([^"]*)")?'
)


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def test_the_rules_the_chart_renders_pass_promtool_check(tmp_path: Path) -> None:
    manifests = helm.Chart.load(CHART).render({}, name="cw", namespace="certwatch")
    docs = [d for d in yaml.safe_load_all(manifests["certwatch/templates/observability.yaml"]) if d]
    rules = next(d for d in docs if d["metadata"]["name"] == "cw-certwatch-alert-rules")
    (tmp_path / "rules.yaml").write_text(rules["data"]["certwatch.rules.yaml"])
    checked = _promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 12 rules found" in checked.stdout


def test_the_rules_unit_tests_pass() -> None:
    tested = _promtool("test", "rules", "alert-rules-test.yaml", cwd=FILES)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _emitted() -> set[str]:
    """Prometheus names of the instruments the code creates."""
    names = set()
    for source in (ROOT / "services" / "certwatch").rglob("*.py"):
        text = source.read_text()
        for kind, name, unit in _INSTRUMENT.findall(text):
            suffix = _UNIT.get(unit or _DEFAULT_UNIT[kind], "") + (
                "_total" if kind.endswith("counter") else ""
            )
            names.add(name.replace(".", "_") + suffix)
    return names


def _used(text: str) -> set[str]:
    return {re.sub(r"_(bucket|count|sum)$", "", m) for m in re.findall(r"\bcertwatch_[a-z_]+", text)}


def test_rules_and_dashboard_use_only_metrics_the_code_emits() -> None:
    emitted = _emitted()
    assert {"certwatch_probes_total", "certwatch_projection_lag", "certwatch_outbox_lag"} <= emitted
    rules = yaml.safe_load((FILES / "alert-rules.yaml").read_text())
    exprs = " ".join(r["expr"] for g in rules["groups"] for r in g["rules"])
    dashboard = json.loads((FILES / "grafana-dashboard.json").read_text())
    queries = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    assert _used(exprs) <= emitted, _used(exprs) - emitted
    assert _used(queries) <= emitted, _used(queries) - emitted
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_every_metric_the_code_emits_is_on_the_dashboard() -> None:
    emitted = _emitted()
    assert {
        "certwatch_probe_phase_duration_milliseconds", "certwatch_probe_outcomes_total", "certwatch_verdicts_total",
        "certwatch_notifications_total", "certwatch_acme_orders_total", "certwatch_certificates_expiring",
        "certwatch_certificate_earliest_expiry_days", "certwatch_vod_requests_total", "certwatch_worker_backlog",
    } <= emitted  # fmt: skip
    dashboard = json.loads((FILES / "grafana-dashboard.json").read_text())
    assert emitted <= _used(" ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"]))


def test_collector_pipelines_use_what_the_config_defines() -> None:
    config = yaml.safe_load((FILES / "otel-collector.yaml").read_text())
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    for pipeline in config["service"]["pipelines"].values():
        for part in ("receivers", "processors", "exporters"):
            assert set(pipeline[part]) <= set(config[part]), (part, pipeline)
    assert "prometheus" in config["service"]["pipelines"]["metrics"]["exporters"]
