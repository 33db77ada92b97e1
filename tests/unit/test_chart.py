"""The Helm chart as Helm itself renders and lints it (helm-python-sdk: Helm's engine, offline),
every object validated against the Kubernetes 1.33 schemas (kubernetes-validate, strict), and
the properties each service must have asserted on the rendered objects.

Three value sets: the defaults (bundled PostgreSQL and NATS), external databases, and
everything off but the prober.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from certwatch.services import PORTS, SERVICES
from tests.unit.test_packaging import CHART, IMAGE_UID

KUBE_VERSION = "1.33.0"
RELEASE = "cw"
# Services the chart carries ahead of the code's catalogue (added by their own branches).
CHART_ONLY = {"console": 8000}
HTTP_SERVICES = {"console"}

EXTERNAL = {
    "postgresql": {"enabled": False},
    "nats": {"enabled": False},
    "externalDatabase": {
        "url": "postgresql://certwatch:pw@db.internal:5432/certwatch",
        "cidr": "10.20.0.0/16",
    },
    "externalNats": {"url": "nats://n1:4222,nats://n2:4222,nats://n3:4222", "cidr": "10.30.0.0/16"},
    "masterKey": {"existingSecret": "certwatch-master-key"},
    "previousMasterKeys": {"existingSecret": "certwatch-old-master-keys", "existingSecretKey": "keys"},
    "ingress": {"enabled": True, "host": "certwatch.example.org"},
}
ONLY_PROBER = {
    **EXTERNAL,
    "ingress": {"enabled": False},
    "bootstrap": {"enabled": False},
    "migrations": {"enabled": False},
    "services": {name: {"enabled": name == "prober"} for name in {*SERVICES, *CHART_ONLY}},
}
VALUE_SETS = {"defaults": {}, "external": EXTERNAL, "only-prober": ONLY_PROBER}


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    chart = helm.Chart.load(CHART)
    manifests = chart.render(values, name=RELEASE, namespace="certwatch", is_install=True)
    objects = []
    for path, text in manifests.items():
        if path.endswith(".txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


@pytest.fixture(scope="module", params=list(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, _render(VALUE_SETS[request.param])


def _of(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _enabled(set_name: str) -> dict[str, int]:
    names = {**PORTS, **CHART_ONLY}
    return {"prober": PORTS["prober"]} if set_name == "only-prober" else names


def _name(service: str) -> str:
    return f"{RELEASE}-certwatch-{service}"


@pytest.mark.parametrize("set_name", list(VALUE_SETS))
def test_helm_lint_strict_is_clean(set_name: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[set_name], strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # warnings and errors
    assert report["errors"] == [] and problems == [], report


def test_every_object_validates_against_kubernetes_strictly(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    assert objects
    for obj in objects:
        # Raises on a schema violation or an unknown field; a kind without a schema raises too.
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_each_service_is_a_hardened_deployment_with_real_health_probes(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    set_name, objects = rendered
    deployments = _of(objects, "Deployment")
    enabled = _enabled(set_name)
    assert set(deployments) == {_name(n) for n in enabled}
    accounts = _of(objects, "ServiceAccount")
    for service, port in enabled.items():
        pod = deployments[_name(service)]["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["serve", service]
        assert pod["automountServiceAccountToken"] is False
        assert accounts[pod["serviceAccountName"]]["automountServiceAccountToken"] is False
        assert (
            pod["securityContext"]["runAsNonRoot"] is True
            and pod["securityContext"]["runAsUser"] == IMAGE_UID
        )
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and sc["privileged"] is False
        assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]["memory"]
        assert {"name": "main", "containerPort": port, "protocol": "TCP"} in container["ports"]
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if service in HTTP_SERVICES:
                assert container[probe]["httpGet"] == {"path": "/healthz", "port": "main"}, (service, probe)
            else:
                assert container[probe]["grpc"] == {"port": port}, (service, probe)
        env = {e["name"]: e for e in container["env"]}
        assert "secretKeyRef" in env["CERTWATCH_DATABASE_URL"]["valueFrom"]
        assert ("CERTWATCH_MASTER_KEY" in env) == (service in {"inventory", "notifier", "hosting", "vod"}), (
            service
        )


def test_pdbs_hpa_and_services(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, objects = rendered
    enabled = _enabled(set_name)
    deployments = _of(objects, "Deployment")
    pdbs = _of(objects, "PodDisruptionBudget")
    hpas = _of(objects, "HorizontalPodAutoscaler")
    assert set(hpas) == {_name("prober")}
    hpa = hpas[_name("prober")]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": _name("prober")}
    assert hpa["minReplicas"] >= 2 and hpa["maxReplicas"] > hpa["minReplicas"]
    assert "replicas" not in deployments[_name("prober")]["spec"]  # the HPA owns it
    assert set(pdbs) == {_name("prober")}  # the only service with more than one replica by default
    services = _of(objects, "Service")
    for service, port in enabled.items():
        ports = {p["name"]: p for p in services[_name(service)]["spec"]["ports"]}
        assert ports["main"]["port"] == port
        assert ports["main"]["appProtocol"] == ("http" if service in HTTP_SERVICES else "grpc")
    if "vod" in enabled:
        vod = {p["name"]: p for p in services[_name("vod")]["spec"]["ports"]}
        assert vod["http"]["port"] == 8080 and vod["http"]["appProtocol"] == "http"


def _peers(rule: dict[str, Any]) -> list[str]:
    return [p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule.get("from", rule.get("to", []))
            if "podSelector" in p]  # fmt: skip


def test_network_policies_let_each_service_reach_only_what_it_needs(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    set_name, objects = rendered
    policies = _of(objects, "NetworkPolicy")
    enabled = _enabled(set_name)
    bundled = set_name == "defaults"
    for service, port in enabled.items():
        spec = policies[_name(service)]["spec"]
        assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == service
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        egress_ports = {(p["port"], tuple(_peers(r))) for r in spec["egress"] for p in r.get("ports", [])}
        assert (53, ()) in egress_ports
        if bundled:
            assert (5432, ("postgresql",)) in egress_ports and (4222, ("nats",)) in egress_ports
        else:
            cidrs = {p["ipBlock"]["cidr"] for r in spec["egress"] for p in r.get("to", []) if "ipBlock" in p}
            assert {"10.20.0.0/16", "10.30.0.0/16"} <= cidrs
        internet = [
            r
            for r in spec["egress"]
            for p in r.get("to", [])
            if p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0"
        ]
        assert bool(internet) == (service in {"prober", "notifier", "hosting"}), service
        for rule in internet:
            assert "10.0.0.0/8" in rule["to"][0]["ipBlock"]["except"]
        called = {peer for r in spec["egress"] for peer in _peers(r)} - {"postgresql", "nats"}
        assert called == (
            {n for n in PORTS if n in enabled and n != "console"} if service == "console" else set()
        ), service
        if service == "console":
            assert spec["ingress"] == [{"ports": [{"port": port, "protocol": "TCP"}]}]  # public
        else:
            callers = {peer for r in spec["ingress"] for peer in _peers(r)}
            assert callers == ({"console"} if "console" in enabled else set()), service
    if "vod" in enabled:
        vod_ingress = policies[_name("vod")]["spec"]["ingress"]
        assert {"ports": [{"port": 8080, "protocol": "TCP"}]} in vod_ingress  # the public HTTP API


def test_migrations_and_bootstrap_jobs_run_as_hooks(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    set_name, objects = rendered
    jobs = _of(objects, "Job")
    if set_name == "only-prober":
        assert jobs == {}
        return
    migrations = jobs[f"{RELEASE}-certwatch-migrations"]
    hook = migrations["metadata"]["annotations"]["helm.sh/hook"]
    # Bundled PostgreSQL exists only after install; an external one before.
    assert hook == ("post-install,pre-upgrade" if set_name == "defaults" else "pre-install,pre-upgrade")
    assert migrations["spec"]["template"]["spec"]["containers"][0]["args"] == ["admin", "migrate"]
    bootstrap = jobs[f"{RELEASE}-certwatch-bootstrap"]
    assert bootstrap["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    (container,) = bootstrap["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["admin", "bootstrap", "admin"]
    env = {e["name"]: e for e in container["env"]}
    key_ref = env["CERTWATCH_BOOTSTRAP_API_KEY"]["valueFrom"]["secretKeyRef"]
    secrets = _of(objects, "Secret")
    key = secrets[key_ref["name"]]["stringData"][key_ref["key"]]
    assert key.startswith("cw_") and len(key.split("_")) == 3 and len(key.split("_")[2]) >= 32
    assert secrets[key_ref["name"]]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # The first console user: its name in the Job, its password only in the generated Secret.
    assert env["CERTWATCH_BOOTSTRAP_CONSOLE_USER"]["value"] == "admin"
    password_ref = env["CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD"]["valueFrom"]["secretKeyRef"]
    password = secrets[password_ref["name"]]["stringData"][password_ref["key"]]
    assert password_ref["name"] == key_ref["name"] and len(password) >= 24
    for config in _of(objects, "ConfigMap").values():
        assert not any(password in str(v) or key in str(v) for v in config.get("data", {}).values())
    for job in jobs.values():
        assert (
            job["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
            is True
        )


def test_the_console_password_can_come_from_a_secret_of_yours_or_no_user_be_made() -> None:
    given = _render({"bootstrap": {"console": {"username": "ops", "existingSecret": "my-console"}}})
    job = _of(given, "Job")[f"{RELEASE}-certwatch-bootstrap"]
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CERTWATCH_BOOTSTRAP_CONSOLE_USER"]["value"] == "ops"
    ref = env["CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "my-console", "key": "console-password"}
    generated = _of(given, "Secret")[f"{RELEASE}-certwatch-bootstrap"]["stringData"]
    assert set(generated) == {"api-key"}  # none generated beside the one given
    none = _render({"bootstrap": {"console": {"username": ""}}})
    job = _of(none, "Job")[f"{RELEASE}-certwatch-bootstrap"]
    names = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (
        "CERTWATCH_BOOTSTRAP_CONSOLE_USER" not in names
        and "CERTWATCH_BOOTSTRAP_CONSOLE_PASSWORD" not in names
    )
    with pytest.raises(
        helm.HelmValuesError, match="username"
    ):  # values.schema.json: a name the console accepts
        _render({"bootstrap": {"console": {"username": "-bad name"}}})


def _config(objects: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = _of(objects, "ConfigMap")[f"{RELEASE}-certwatch"]["data"]
    return data


def test_bundled_databases_and_generated_secrets_by_default() -> None:
    objects = _render({})
    config = _config(objects)
    nats = [f"nats://{RELEASE}-certwatch-nats-{i}.{RELEASE}-certwatch-nats-headless:4222" for i in range(3)]
    assert config["CERTWATCH_NATS_URL"] == ",".join(nats)
    assert config["CERTWATCH_STREAM_REPLICAS"] == "3"
    assert config["CERTWATCH_EXPIRY_GAUGE_DOMAINS"] == "100"  # the per-domain gauge's bound
    assert config["CERTWATCH_INVENTORY_HOST"] == _name("inventory")  # callers reach it at its Service
    sets = _of(objects, "StatefulSet")
    assert sets[f"{RELEASE}-certwatch-nats"]["spec"]["replicas"] == 3
    assert f"{RELEASE}-certwatch-postgresql" in sets
    secret = _of(objects, "Secret")[f"{RELEASE}-certwatch"]
    assert secret["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    data = secret["stringData"]
    assert data["database-url"].startswith(f"postgresql://certwatch:{data['postgres-password']}@")
    assert len(data["master-key"]) == 44  # 32 bytes, base64


def test_external_databases_come_from_values_or_existing_secrets() -> None:
    objects = _render(EXTERNAL)
    assert not _of(objects, "StatefulSet")
    assert _config(objects)["CERTWATCH_NATS_URL"] == EXTERNAL["externalNats"]["url"]
    assert _config(objects)["CERTWATCH_STREAM_REPLICAS"] == "1"
    data = _of(objects, "Secret")[f"{RELEASE}-certwatch"]["stringData"]
    assert data == {
        "database-url": EXTERNAL["externalDatabase"]["url"]
    }  # the master key is the user's Secret
    inventory = _of(objects, "Deployment")[_name("inventory")]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in inventory["env"]}
    assert env["CERTWATCH_MASTER_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "certwatch-master-key",
        "key": "master-key",
    }
    ingress = _of(objects, "Ingress")[f"{RELEASE}-certwatch"]["spec"]["rules"][0]
    backends = {p["path"]: p["backend"]["service"]["name"] for p in ingress["http"]["paths"]}
    assert backends == {"/vod": _name("vod"), "/": _name("console")}


def _render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as info:
        _render(values)
    return str(info.value)


def test_rendering_refuses_bad_values_naming_them() -> None:
    no_db = {**EXTERNAL, "externalDatabase": {"url": ""}}
    assert "externalDatabase.url" in _render_error(no_db)
    assert "protocol" in _render_error({"services": {"prober": {"protocol": "ftp"}}})  # values.schema.json
    assert "services.nope: unknown service" in _render_error(
        {"services": {"nope": {"enabled": True, "port": 1}}}
    )
    assert "masterKey.value must be 32 bytes" in _render_error({"masterKey": {"value": "c2hvcnQ="}})


OLD_KEYS = f"{base64.b64encode(b'o' * 32).decode()},{base64.b64encode(b'p' * 32).decode()}"


def _key_refs(objects: list[dict[str, Any]], variable: str) -> dict[str, dict[str, str]]:
    """The Secret key each Deployment takes `variable` from, by service (those that have it)."""
    refs = {}
    for name, deployment in _of(objects, "Deployment").items():
        for e in deployment["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if e["name"] == variable:
                refs[name.removeprefix(f"{RELEASE}-certwatch-")] = e["valueFrom"]["secretKeyRef"]
    return refs


def test_previous_master_keys_are_wired_when_set_and_absent_when_not() -> None:
    unset = _render({})
    sealing = set(_key_refs(unset, "CERTWATCH_MASTER_KEY"))
    assert sealing == {"inventory", "notifier", "hosting", "vod"}
    assert _key_refs(unset, "CERTWATCH_PREVIOUS_MASTER_KEYS") == {}
    assert "previous-master-keys" not in _of(unset, "Secret")[f"{RELEASE}-certwatch"]["stringData"]

    given = _render({"previousMasterKeys": {"value": OLD_KEYS}})  # kept in the chart's Secret
    assert _of(given, "Secret")[f"{RELEASE}-certwatch"]["stringData"]["previous-master-keys"] == OLD_KEYS
    ours = {"name": f"{RELEASE}-certwatch", "key": "previous-master-keys"}
    assert _key_refs(given, "CERTWATCH_PREVIOUS_MASTER_KEYS") == dict.fromkeys(sealing, ours)

    theirs = _render(EXTERNAL)  # from a Secret of the user's
    assert "previous-master-keys" not in _of(theirs, "Secret")[f"{RELEASE}-certwatch"]["stringData"]
    user = {"name": "certwatch-old-master-keys", "key": "keys"}
    assert _key_refs(theirs, "CERTWATCH_PREVIOUS_MASTER_KEYS") == dict.fromkeys(sealing, user)

    short = f"{OLD_KEYS},c2hvcnQ="
    assert "previousMasterKeys.value must be" in _render_error({"previousMasterKeys": {"value": short}})
    assert "previousMasterKeys" in _render_error({"previousMasterKeys": {"value": "not base64!"}})  # schema


def _docs(objects: list[dict[str, Any]]) -> Iterator[str]:
    for obj in objects:
        yield f"{obj['kind']}/{obj['metadata']['name']}"


def test_every_catalogue_service_is_in_the_chart() -> None:
    names = {d.split("/", 1)[1] for d in _docs(_render({})) if d.startswith("Deployment/")}
    assert {_name(s) for s in SERVICES} <= names


ACME = {
    "acme": {
        "directory": "https://acme.internal.example/directory",
        "caBundle": {"configMap": "acme-ca", "key": "root.pem"},
        "existingSecret": "acme-eab",
        "dnsProvider": "rfc2136",
        "rfc2136Server": "10.9.0.53:53",
        "egress": [
            {"to": [{"ipBlock": {"cidr": "10.9.0.0/24"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
        ],
    }
}


def _hosting_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = _of(objects, "Deployment")[_name("hosting")]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


def test_hosting_exposes_its_http01_responder_and_acme_settings() -> None:
    objects = _render({})
    config = _of(objects, "ConfigMap")[f"{RELEASE}-certwatch"]["data"]
    assert config["CERTWATCH_ACME_HTTP01_ADDR"] == "0.0.0.0:8402"
    assert config["CERTWATCH_ACME_DIRECTORY"] == ""  # no CA by default: applications recorded only
    ports = {p["name"]: p for p in _of(objects, "Service")[_name("hosting")]["spec"]["ports"]}
    assert ports["http01"]["port"] == 80 and ports["http01"]["targetPort"] == "http01"  # port 80 of the names
    assert {"name": "http01", "containerPort": 8402, "protocol": "TCP"} in _hosting_container(objects)[
        "ports"
    ]
    policy = _of(objects, "NetworkPolicy")[_name("hosting")]["spec"]
    assert {"ports": [{"port": 8402, "protocol": "TCP"}]} in policy[
        "ingress"
    ]  # the CA's validators, anywhere

    objects = _render(ACME)
    config = _of(objects, "ConfigMap")[f"{RELEASE}-certwatch"]["data"]
    assert config["CERTWATCH_ACME_DIRECTORY"] == "https://acme.internal.example/directory"
    assert config["CERTWATCH_ACME_DNS_PROVIDER"] == "rfc2136"
    assert config["CERTWATCH_ACME_RFC2136_SERVER"] == "10.9.0.53:53"
    container = _hosting_container(objects)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CERTWATCH_ACME_CA_FILE"] == "/etc/certwatch/acme-ca/root.pem"
    assert {"secretRef": {"name": "acme-eab"}} in container["envFrom"]
    assert {"name": "acme-ca", "mountPath": "/etc/certwatch/acme-ca", "readOnly": True} in container[
        "volumeMounts"
    ]
    for service, deployment in _of(objects, "Deployment").items():
        if service != _name("hosting"):  # the ACME secret and trust reach the hosting service only
            other = deployment["spec"]["template"]["spec"]["containers"][0]
            assert {"secretRef": {"name": "acme-eab"}} not in other["envFrom"]
            assert all(e["name"] != "CERTWATCH_ACME_CA_FILE" for e in other["env"])
    policies = _of(objects, "NetworkPolicy")
    private_ca = ACME["acme"]["egress"][0]
    assert private_ca in policies[_name("hosting")]["spec"]["egress"]
    assert all(private_ca not in p["spec"]["egress"] for n, p in policies.items() if n != _name("hosting"))
    for obj in objects:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_acme_values_are_checked() -> None:
    assert "acme.rfc2136Server" in _render_error({"acme": {"dnsProvider": "rfc2136"}})
    assert "directory" in _render_error({"acme": {"directory": "acme.example/dir"}})  # values.schema.json
    assert "dnsProvider" in _render_error({"acme": {"dnsProvider": "route53"}})
