"""The deployment files (deploy/) agree with the app they deploy: routes, port, command
options, image name, secret and the non-root, compiler-free image. No Docker needed."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import asyncpg
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from app.db import APP_ROLE, SETTINGS
from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE = DEPLOY / "compose.yaml"
CONSOLE_SCRIPT = Path(sys.executable).with_name("esms-usage")
PORT = 8000
MIGRATE = ["esms-usage", "db", "upgrade"]
BUILD_TOOLS = {"gcc", "g++", "cc", "clang", "build-essential", "make", "python3-dev"}


# --- Reading the files ------------------------------------------------------------------


def yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yaml", ".yml"))


def documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]


@cache
def manifests() -> dict[tuple[str, str], dict]:
    """Every Kubernetes object under deploy/k8s, by (kind, name)."""
    found = {}
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in documents(path):
            found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


def one(kind: str) -> dict:
    objects = [doc for (k, _), doc in manifests().items() if k == kind]
    assert len(objects) == 1, f"expected one {kind} under deploy/k8s, found {len(objects)}"
    return objects[0]


@cache
def kustomization() -> dict:
    return documents(K8S / "kustomization.yaml")[0]


@cache
def compose() -> dict:
    return documents(COMPOSE)[0]


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile as stages of (INSTRUCTION, arguments), continuation lines joined."""
    lines, pending = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction, rest.strip()))
    return stages


def dockerfile_arguments() -> dict[str, str]:
    """The ARG values declared before the first FROM (the base image names)."""
    found = {}
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.upper().startswith("FROM "):
            break
        if line.upper().startswith("ARG "):
            name, _, value = line[4:].strip().partition("=")
            found[name] = value
    return found


def instructions(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [rest for instruction, rest in stage if instruction == name]


def exec_form(arguments: str) -> list[str]:
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def final_stage() -> list[tuple[str, str]]:
    return dockerfile_stages()[-1]


def container(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]["containers"][0]


def command_of(c: dict) -> list[str]:
    return [*c.get("command", []), *c.get("args", [])]


def option_value(command: list[str], option: str) -> str:
    assert option in command, f"{option} missing from {command}"
    return command[command.index(option) + 1]


def serve_commands() -> dict[str, list[str]]:
    """Every `esms-usage serve` the deployment runs, by where it is written."""
    return {
        "Dockerfile CMD": exec_form(instructions(final_stage(), "CMD")[-1]),
        "compose api": compose()["services"]["api"]["command"],
        "k8s Deployment": command_of(container(one("Deployment"))),
    }


@cache
def image() -> str:
    """The one image name of the deployment: the kustomization's image and tag."""
    (entry,) = kustomization()["images"]
    return f"{entry.get('newName', entry['name'])}:{entry['newTag']}"


@cache
def app_get_paths() -> set[str]:
    app = create_app()
    paths = {route.path for route in app.routes if "GET" in (getattr(route, "methods", None) or ())}
    paths |= {path for path, item in app.openapi()["paths"].items() if "get" in item}
    return paths


@cache
def help_text(*command: str) -> str:
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), *command, "--help"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


# --- Every file parses --------------------------------------------------------------------


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_yaml_file_parses(path):
    docs = documents(path)
    assert docs, f"{path} holds no document"
    if K8S in path.parents and path.name != "kustomization.yaml":
        for doc in docs:
            assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name")


def test_the_kustomization_lists_every_manifest_and_only_existing_ones():
    listed = set(kustomization()["resources"])
    for resource in listed:
        assert (K8S / resource).is_file(), f"kustomization lists a missing {resource}"
    top_level = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert top_level <= listed, f"not in kustomization.yaml: {sorted(top_level - listed)}"
    namespace = kustomization()["namespace"]
    assert one("Namespace")["metadata"]["name"] == namespace
    for (kind, name), doc in manifests().items():
        if kind != "Namespace":
            assert doc["metadata"].get("namespace") == namespace, f"{kind}/{name}"


# --- One image, one port, real routes -----------------------------------------------------


def test_every_service_and_workload_runs_the_same_image():
    assert container(one("Deployment"))["image"] == image()
    assert container(one("Job"))["image"] == image()
    for service in ("migrate", "api"):
        assert compose()["services"][service]["image"] == image()
    # The build command an operator copies tags the image with that same name.
    assert f"-t {image()}" in DOCKERFILE.read_text(encoding="utf-8")
    assert image() in (DEPLOY / "README.md").read_text(encoding="utf-8")


def test_probes_ask_routes_the_app_really_serves():
    c = container(one("Deployment"))
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/live"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in c:
            assert c[probe]["httpGet"]["path"] in app_get_paths(), probe
    healthcheck = " ".join(instructions(final_stage(), "HEALTHCHECK"))
    assert f"127.0.0.1:{PORT}/health" in healthcheck
    assert "/health" in app_get_paths()


def test_probes_containers_and_services_use_the_port_the_server_listens_on():
    for where, command in serve_commands().items():
        assert option_value(command, "--port") == str(PORT), where
        assert option_value(command, "--host") == "0.0.0.0", where
    assert str(PORT) in " ".join(instructions(final_stage(), "EXPOSE")).split()
    c = container(one("Deployment"))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": PORT}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in c:
            assert c[probe]["httpGet"]["port"] in ("http", PORT), probe
    assert one("Service")["spec"]["ports"][0]["targetPort"] in ("http", PORT)
    published = compose()["services"]["api"]["ports"]
    assert all(str(p).rsplit(":", 1)[-1] == str(PORT) for p in published)


def test_the_serve_commands_use_only_options_that_serve_accepts():
    accepted = set(re.findall(r"--[a-z][a-z0-9-]*", help_text("serve")))
    for where, command in serve_commands().items():
        assert command[:2] == ["esms-usage", "serve"], where
        used = {word for word in command if word.startswith("--")}
        assert used <= accepted, f"{where}: unknown options {sorted(used - accepted)}"
        # Migrations are the migrate step's, never the replicas'.
        assert "--no-migrate" in used, where


def test_migrations_run_once_with_db_upgrade_before_the_api():
    help_text("db", "upgrade")  # the subcommand exists
    assert command_of(container(one("Job"))) == MIGRATE
    services = compose()["services"]
    assert services["migrate"]["command"] == MIGRATE
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    api_depends = services["api"]["depends_on"]
    assert api_depends["migrate"]["condition"] == "service_completed_successfully"


# --- Database wiring ----------------------------------------------------------------------


def test_compose_runs_a_postgresql_with_a_volume_and_a_healthcheck():
    services = compose()["services"]
    postgres = services["postgres"]
    assert re.fullmatch(r"postgres:1[67](\.\d+)?(-\w+)?", postgres["image"])
    assert postgres["healthcheck"]["test"]
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose()["volumes"]
    for name in ("migrate", "api"):
        url = services[name]["environment"]["DATABASE_URL"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url, name


def test_the_migrations_run_as_the_owner_and_the_api_as_the_application_role():
    """Two CloudNativePG secrets: the owner's, generated (the migration Job), and the
    application role's, a managed role of the cluster (the API)."""
    cluster = one("Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert cluster["spec"]["instances"] >= 3
    assert cluster["spec"]["storage"]["size"]
    owner = f"{cluster['metadata']['name']}-app"
    (role,) = cluster["spec"]["managed"]["roles"]
    assert (role["name"], role["login"], role["superuser"]) == (APP_ROLE, True, False)
    service = role["passwordSecret"]["name"]
    for kind, secret in (("Job", owner), ("Deployment", service)):
        env = {e["name"]: e for e in container(one(kind))["env"]}
        ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == (secret, "uri"), kind
    for secret in (owner, service):
        template = manifests()[("Secret", secret)]
        assert "REPLACE" in template["stringData"]["uri"]
    template = manifests()[("Secret", service)]
    assert template["type"] == "kubernetes.io/basic-auth"
    assert template["stringData"]["username"] == APP_ROLE
    assert template["stringData"]["uri"].startswith(f"postgresql://{APP_ROLE}:")


def test_compose_migrates_as_the_owner_and_serves_as_the_application_role():
    services = compose()["services"]
    assert services["migrate"]["environment"]["DATABASE_URL"].startswith("postgresql://esms:")
    assert services["api"]["environment"]["DATABASE_URL"].startswith(f"postgresql://{APP_ROLE}:")
    script = services["postgres"]["volumes"][1].split(":")[0]
    assert f"CREATE ROLE {APP_ROLE} LOGIN" in (DEPLOY / script).read_text()


def embedded_settings() -> dict[str, str]:
    """name -> value of app/postgresql.conf, the embedded server's settings."""
    settings = {}
    for line in SETTINGS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, value = (part.strip() for part in line.split("=", 1))
            settings[name] = value.strip("'")
    return settings


def test_the_embedded_postgresql_runs_with_the_parameters_of_the_cluster():
    parameters = one("Cluster")["spec"]["postgresql"]["parameters"]
    settings = embedded_settings()
    assert "shared_buffers" in settings
    for name, value in settings.items():
        assert parameters.get(name) == value, name


async def test_the_embedded_server_has_applied_its_settings(pg_server):
    conn = await asyncpg.connect(pg_server.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for name, value in embedded_settings().items():
            assert await conn.fetchval(f"SHOW {name}") == value, name
    finally:
        await conn.close()


# --- Availability -------------------------------------------------------------------------


def test_replicas_budget_and_autoscaler_fit_together():
    deployment = one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    pdb = one("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    assert one("Service")["spec"]["selector"].items() <= pod_labels.items()
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert (
        hpa["spec"]["minReplicas"] >= 2 and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    )
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    monitor = manifests()[("ServiceMonitor", "esms-usage")]
    assert monitor["spec"]["endpoints"][0]["path"] in app_get_paths()


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_workloads_run_as_the_image_user_with_requests_and_limits(kind):
    pod = one(kind)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (user,) = instructions(final_stage(), "USER")
    assert pod["securityContext"]["runAsUser"] == int(user.split(":")[0])
    c = container(one(kind))
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= c["resources"][bound].keys(), f"{kind} {bound}"
    assert c["securityContext"]["allowPrivilegeEscalation"] is False


# --- The image ----------------------------------------------------------------------------


def test_the_image_is_built_in_two_stages_and_runs_non_root_without_build_tools():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "a builder stage and a final stage"
    assert any("pip wheel" in run for run in instructions(stages[0], "RUN")), "no wheel built"
    base = instructions(final_stage(), "FROM")[0].split()[0]
    base = dockerfile_arguments().get(base.strip("${}"), base)
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", base), base
    (user,) = instructions(final_stage(), "USER")
    assert user.split(":")[0] not in ("root", "0")
    final_words = set(re.split(r"[\s;&|=]+", " ".join(rest for _, rest in final_stage())))
    assert not final_words & BUILD_TOOLS, sorted(final_words & BUILD_TOOLS)
    runs = " ".join(instructions(final_stage(), "RUN"))
    assert "--no-cache-dir" in runs or "PIP_NO_CACHE_DIR=1" in str(final_stage())
    cmd = exec_form(instructions(final_stage(), "CMD")[-1])
    assert cmd == [
        "esms-usage",
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        str(PORT),
        "--workers",
        "2",
        "--no-migrate",
    ]


def test_the_image_pins_every_runtime_dependency_within_the_project_ranges():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = {}
    for line in (DEPLOY / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name)] = version
    for dependency in project["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in deploy/constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"deploy/constraints.txt pins {name}=={pins[name]}, outside {requirement.specifier}"
        )
