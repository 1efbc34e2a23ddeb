"""The deployment files agree with the code: the image's config loads, its HEALTHCHECK asks the port ops.listen
opens, what runbot writes is on a volume, and compose.yaml is valid for Docker Compose (when it is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from support import ROOT

from bot.config import load_settings

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")


def _compose_command() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_the_image_config_loads_and_the_healthcheck_asks_its_port() -> None:
    settings = load_settings(ROOT / "deploy" / "config.docker.yaml")
    assert settings.ops.address is not None
    _, port = settings.ops.address
    health = re.search(r"HEALTHCHECK .*?http://127\.0\.0\.1:(\d+)/healthz", DOCKERFILE, re.S)
    assert health is not None and int(health.group(1)) == port
    assert f"EXPOSE 8443 {port}" in DOCKERFILE and settings.telegram.webhook_port == 8443
    # the database is on the image's volume, owned by the user runbot runs as
    volume = re.search(r'VOLUME \["([^"]+)"\]', DOCKERFILE)
    assert volume is not None and Path(settings.database.path).parent == Path(volume.group(1))
    assert re.search(r"^USER runbot$", DOCKERFILE, re.M) and "chown runbot:runbot /data" in DOCKERFILE
    assert "COPY deploy/config.docker.yaml ./config.yaml" in DOCKERFILE


def test_compose_mounts_the_places_runbot_writes() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    bot = compose["services"]["bot"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in bot["volumes"] if not m.startswith("#")}
    image_config = load_settings(ROOT / "deploy" / "config.docker.yaml")
    assert str(Path(image_config.database.path).parent) in mounts
    assert "/app/knowledge" in mounts  # moderators' edits from the chat survive a new image
    assert set(mounts.values()) <= set(compose["volumes"])
    assert {"DISCORD_TOKEN", "TELEGRAM_TOKEN", "TELEGRAM_WEBHOOK_SECRET"} <= set(bot["environment"])


@pytest.mark.slow
def test_compose_file_is_valid_for_docker_compose(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("Docker Compose is not installed here")
    done = subprocess.run(
        [*command, "-f", str(ROOT / "compose.yaml"), "config", "--quiet"], capture_output=True, text=True, timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr


def test_the_postgres_profile_runs_one_receiver_and_workers_on_one_database() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {name for name, svc in services.items() if "postgres" in svc.get("profiles", [])} == {
        "postgres", "receiver", "worker"}
    configs = {}
    for name in ("receiver", "worker"):
        mount = next(m for m in services[name]["volumes"] if m.endswith(":/app/config.yaml:ro"))
        configs[name] = load_settings(ROOT / mount.split(":")[0])
    receiver, worker = configs["receiver"], configs["worker"]
    assert receiver.database.url == worker.database.url and receiver.database.postgres
    assert urlsplit(receiver.database.url).hostname == "postgres"  # the compose service
    assert (receiver.telegram.mode, receiver.telegram.inbox) == ("webhook", "shared")
    assert (worker.telegram.mode, worker.telegram.inbox) == ("worker", "shared")
    assert worker.discord.enabled is False  # Discord's shards stay in one process unless shard_ids split them
    assert "RUNBOT_DATABASE_PASSWORD" in services["receiver"]["environment"]
    assert '".[metrics,postgres]"' in DOCKERFILE  # the image carries the PostgreSQL driver
