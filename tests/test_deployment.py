"""Dockerfile and docker-compose.yml: valid, and every command they run exists in the CLI."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from capo_lab.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def instruction(name: str) -> str:
    """The argument of the last ``NAME`` instruction (continuation lines joined)."""
    text = DOCKERFILE.replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.+)$", text, flags=re.MULTILINE)
    assert found, f"Dockerfile has no {name}"
    return found[-1].strip()


def exec_form(argument: str) -> list[str]:
    value = json.loads(argument)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), argument
    return value


def check_cli(argv: list[str]) -> None:
    """``capo-lab sub … --opt`` names a real subcommand and only options it has."""
    assert argv[0] == "capo-lab", argv
    command = typer.main.get_command(app)
    args = argv[1:]
    while hasattr(command, "commands") and args and args[0] in command.commands:
        command, args = command.commands[args[0]], args[1:]
    assert not hasattr(command, "commands"), f"{argv}: no such command"
    options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    for arg in args:
        if arg.startswith("--"):
            assert arg.split("=")[0] in options, f"{argv}: {command.name} has no option {arg}"


def test_dockerfile_runs_the_lab_as_a_non_root_user_and_stops_with_sigint() -> None:
    assert instruction("USER") not in ("root", "0")
    assert instruction("STOPSIGNAL") == "SIGINT"
    assert "cuda" in instruction("FROM")
    check_cli(exec_form(instruction("CMD")))
    check_cli(exec_form(instruction("HEALTHCHECK").split("CMD", 1)[1].strip()))


def test_compose_commands_and_health_checks_exist_in_the_cli() -> None:
    for name in ("app", "worker"):
        service = COMPOSE["services"][name]
        check_cli(service["command"])
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD"
        check_cli(test[1:])


def test_app_and_worker_share_the_lab_home_volume_and_the_worker_reserves_a_gpu() -> None:
    services = COMPOSE["services"]
    homes = set()
    for name in ("app", "worker"):
        home = services[name]["environment"]["CAPO_LAB_HOME"]
        mounts = [v for v in services[name]["volumes"] if v.split(":")[1] == home]
        assert len(mounts) == 1
        homes.add(mounts[0].split(":")[0])
    assert len(homes) == 1 and homes <= set(COMPOSE["volumes"])
    worker = services["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    minutes, unit = re.fullmatch(r"(\d+)([ms])", worker["stop_grace_period"]).groups()
    assert int(minutes) * (60 if unit == "m" else 1) >= 60  # a checkpoint save takes seconds
    assert {"postgres", "redis"} <= {n for n, s in services.items() if "scale" in s.get("profiles", [])}


def test_docker_compose_accepts_the_file() -> None:
    client = shutil.which("docker-compose")
    if client is None:
        if os.environ.get("CAPO_LAB_REQUIRE_SERVERS") == "1":
            pytest.fail("docker-compose is required here (CAPO_LAB_REQUIRE_SERVERS=1)")
        pytest.skip("docker-compose (Debian package) is not installed")
    out = subprocess.run([client, "config", "-q"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
