"""docker-compose.yml, the Dockerfile and .env.example agree with the settings the code reads.

No Docker engine runs here: these checks are on the files themselves (see the README).
"""

from __future__ import annotations

import re

import pytest
import yaml

from dunflow.settings import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DUNFLOW_SERVICES = ("migrate", "api", "worker")
LONG_RUNNING = [name for name in SERVICES if name != "migrate"]
# Settings that compose does not pass through, and why.
NOT_PASSED = {
    "data_dir", "flows_dir", "templates_dir",  # fixed by the image (Dockerfile ENV)
    "temporal_ui_port",  # the dev server's UI only
}
SET_PER_SERVICE = {"api_host", "api_port", "codec_cors_origins"}  # the api service sets them
# the code's default (http://API_HOST:API_PORT) would be 0.0.0.0 in a container; logs for a collector
OWN_DEFAULTS = {"DUNFLOW_PUBLIC_URL", "DUNFLOW_LOG_FORMAT"}
REFERENCE = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def env_name(field: str) -> str:
    return f"DUNFLOW_{field.upper()}"


def setting_names() -> set[str]:
    return {env_name(field) for field in Settings.model_fields}


def dunflow_env(service: str) -> dict[str, str]:
    return {name: str(value) for name, value in SERVICES[service]["environment"].items()}


def test_every_service_has_an_image_or_a_build_and_known_dependencies():
    assert {"postgres", "temporal", "temporal-ui", "migrate", "api", "worker"} <= set(SERVICES)
    for name, service in SERVICES.items():
        assert service.get("image") or service.get("build"), f"{name} has neither image nor build"
        for needed, condition in service.get("depends_on", {}).items():
            assert needed in SERVICES, f"{name} depends on {needed}, which is not a service"
            wanted = "service_completed_successfully" if needed == "migrate" else "service_healthy"
            assert condition["condition"] == wanted, f"{name} should wait for {needed} to be {wanted}"
            if wanted == "service_healthy":
                assert "healthcheck" in SERVICES[needed], f"{name} waits for {needed}, which has no healthcheck"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_services_have_healthchecks_and_restart(name):
    service = SERVICES[name]
    assert service["healthcheck"]["test"], f"{name} has no healthcheck"
    assert service["restart"] in ("unless-stopped", "always")


def test_the_api_and_workers_run_the_dunflow_image_with_its_commands():
    for name in DUNFLOW_SERVICES:
        assert SERVICES[name]["build"] == "." and SERVICES[name]["image"] == "dunflow:local"
    assert SERVICES["migrate"]["command"] == ["dunflow", "db", "upgrade"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["api"]["command"] == ["dunflow", "api"]
    assert SERVICES["worker"]["command"] == ["dunflow", "worker"]
    assert "/readyz" in " ".join(SERVICES["api"]["healthcheck"]["test"])


def test_workers_scale_out_and_stop_gracefully():
    worker = SERVICES["worker"]
    assert "ports" not in worker and "container_name" not in worker, "a fixed port or name blocks --scale worker=N"
    grace = int(worker["stop_grace_period"].removesuffix("s"))
    shutdown = float(REFERENCE.fullmatch(dunflow_env("worker")["DUNFLOW_WORKER_SHUTDOWN_SECONDS"]).group(2))
    assert grace > shutdown, "docker must not kill a worker before its activities had their time to finish"
    port = dunflow_env("worker")["DUNFLOW_METRICS_PORT"]
    assert f":{port}/metrics" in " ".join(worker["healthcheck"]["test"]) and port in worker["expose"]


@pytest.mark.parametrize("service", DUNFLOW_SERVICES)
def test_dunflow_services_pass_every_setting_and_only_settings(service):
    passed = {name for name in dunflow_env(service) if name.startswith("DUNFLOW_")}
    unknown = passed - setting_names()
    assert not unknown, f"{service} sets {sorted(unknown)}, which the code does not read"
    expected_missing = NOT_PASSED | (set() if service == "api" else SET_PER_SERVICE)
    missing = {field for field in Settings.model_fields if env_name(field) not in passed}
    assert missing == expected_missing, (f"{service}: settings not passed through: {sorted(missing - expected_missing)};"
                                         f" passed but listed as not passed: {sorted(expected_missing - missing)}")


def test_compose_defaults_are_the_code_defaults():
    defaults = Settings(_env_file=None).model_dump()
    for name, value in dunflow_env("api").items():
        match = REFERENCE.fullmatch(value)
        field = name.removeprefix("DUNFLOW_").lower()
        if name in OWN_DEFAULTS or not match or value.startswith("${" + name + ":?"):
            continue
        if match.group(1) == name and match.group(2):
            as_read = getattr(Settings(_env_file=None, **{field: match.group(2)}), field)
            assert as_read == defaults[field], f"{name}: compose default {match.group(2)!r} differs from the code's"


def test_the_store_and_temporal_are_the_compose_services():
    env = dunflow_env("api")
    assert env["DUNFLOW_TEMPORAL_ADDRESS"] == "temporal:7233"
    assert "@postgres:5432/dunflow" in env["DUNFLOW_DATABASE_URL"]
    init = (PROJECT_ROOT / "deploy" / "postgres-init.sql").read_text()
    assert "CREATE DATABASE dunflow;" in init
    mounted = " ".join(SERVICES["postgres"]["volumes"])
    assert "./deploy/postgres-init.sql:/docker-entrypoint-initdb.d/" in mounted
    temporal = SERVICES["temporal"]["environment"]
    assert temporal["DB"] == "postgres12" and temporal["POSTGRES_SEEDS"] == "postgres"


def test_the_temporal_ui_decodes_through_the_api():
    ui = SERVICES["temporal-ui"]["environment"]
    assert ui["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"  # the operator's sign-in cookie
    assert dunflow_env("api")["DUNFLOW_CODEC_CORS_ORIGINS"] == ui["TEMPORAL_CORS_ORIGINS"]


def test_env_example_documents_every_setting_and_every_compose_variable():
    text = (PROJECT_ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))
    assert setting_names() <= documented, f"undocumented settings: {sorted(setting_names() - documented)}"
    stray = {name for name in documented if name.startswith("DUNFLOW_")} - setting_names()
    assert not stray, f".env.example names settings the code does not read: {sorted(stray)}"
    used = set(REFERENCE.findall((PROJECT_ROOT / "docker-compose.yml").read_text()))
    assert {name for name, _ in used} <= documented


def test_the_image_is_slim_non_root_and_locked():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^USER dunflow$", dockerfile, flags=re.MULTILINE)
    assert "pip install -r /src/requirements.lock" in dockerfile and "--no-deps /src" in dockerfile
    for field in NOT_PASSED - {"temporal_ui_port"}:
        assert f"{env_name(field)}=" in dockerfile, f"the image does not set {env_name(field)}"
    lock = (PROJECT_ROOT / "requirements.lock").read_text().splitlines()
    pins = dict(line.split("==") for line in lock if line and not line.startswith("#"))
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version) for version in pins.values())
    import tomllib

    from packaging.requirements import Requirement

    declared = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for requirement in map(Requirement, declared):
        name = requirement.name.lower()
        assert name in pins, f"{name} is a dependency but not in requirements.lock (run scripts/lock.py)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} breaks {requirement}"
