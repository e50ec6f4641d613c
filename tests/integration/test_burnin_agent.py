"""The real burn-in runner against a running afm, with fake nvidia-smi, dcgmi and dmesg on PATH
that print what real hosts print. (On a lent GPU machine the same agent runs for real.)"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

AFM = str(Path(sys.executable).parent / "afm")
DATA = Path(__file__).resolve().parents[1] / "data"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    var = tmp_path_factory.mktemp("agent-var")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFM_")}
    env.update(
        AFM_VAR_DIR=str(var),
        AFM_PORT=str(port),
        AFM_LOG_LEVEL="warning",
        AFM_BURN_IN_RULES=str(DATA / "burnin" / "rules-agent.toml"),
        AFM_CONFIG=str(var / "none.toml"),
    )
    for args in (["db", "upgrade"], ["demo", "load"]):
        subprocess.run([AFM, *args], env=env, check=True, capture_output=True, timeout=180)
    token = subprocess.run(
        [AFM, "users", "token", "floor"], env=env, check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()
    log = (var / "server.log").open("w")
    process = subprocess.Popen([AFM, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail(f"afm did not start: {(var / 'server.log').read_text()}")
        yield {"url": url, "token": token, "env": env}
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()


def _get(server: dict[str, Any], path: str) -> Any:
    request = urllib.request.Request(server["url"] + path, headers={"Authorization": f"Bearer {server['token']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _agent(server: dict[str, Any], serial: str, gpus: int, **fake: str) -> subprocess.CompletedProcess[str]:
    env = {
        **server["env"],
        "PATH": f"{DATA / 'fakebin'}{os.pathsep}{os.environ['PATH']}",
        "FAKE_GPUS": str(gpus),
        **fake,
    }
    return subprocess.run(
        [
            AFM,
            "burn-in",
            "agent",
            "--server",
            server["url"],
            "--module",
            serial,
            "--token",
            server["token"],
            "--duration",
            "3",
            "--interval",
            "0.25",
            "--chunk",
            "1",
            "--load",
            "none",
            "--station",
            "MXMTY1-BRN-01",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assembled(server: dict[str, Any], n: int) -> tuple[str, int]:
    module = _get(server, "/api/v1/modules?state=assembled&limit=2")["items"][n]
    spec = _get(server, f"/api/v1/specs/{module['spec']}")
    return module["serial"], int(spec["gpu_count"])


def test_agent_healthy_run_passes(server: dict[str, Any]) -> None:
    serial, gpus = _assembled(server, 0)
    done = _agent(server, serial, gpus, FAKE_UNSUPPORTED="temperature.memory")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS (rules test-agent)" in done.stdout
    assert "nvidia-smi lacks 1 field(s)" in done.stderr
    assert _get(server, f"/api/v1/modules/{serial}")["state"] == "burn_in_passed"
    runs = _get(server, f"/api/v1/modules/{serial}/burn-in-runs")
    assert runs[0]["verdict"] == "pass"
    assert runs[0]["dcgm_level"] == 3
    assert runs[0]["gpus_seen"] == gpus
    assert runs[0]["telemetry_uploads"] >= 2  # streamed in chunks


def test_agent_hot_gpu_and_xid_fail(server: dict[str, Any]) -> None:
    serial, gpus = _assembled(server, 0)  # the first test used the other assembled module
    done = _agent(server, serial, gpus, FAKE_HOT_GPU="1", FAKE_XID="79")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL" in done.stdout
    assert "hw_thermal_slowdown active 100.0 % of samples > 1.0 %" in done.stdout
    assert "Xid 79 on PCI:0000:3b:00" in done.stdout
    assert _get(server, f"/api/v1/modules/{serial}")["state"] == "burn_in_failed"


def test_agent_without_nvidia_smi_says_so(server: dict[str, Any], tmp_path: Path) -> None:
    env = {**server["env"], "PATH": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "app",
            "burn-in",
            "agent",
            "--server",
            server["url"],
            "--module",
            "AFM-26-000001",
            "--token",
            "t",
            "--duration",
            "1",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 1
    assert "nvidia-smi not found on PATH" in done.stderr
