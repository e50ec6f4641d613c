"""`afm burn-in agent`: the burn-in runner for the machine under test.

It checks for nvidia-smi (and dcgmi), starts a GPU stress load for the soak, samples nvidia-smi at
1 Hz and streams the telemetry to the server in chunks, runs `dcgmi diag` when present, collects the
kernel's Xid lines, and finishes the run. Only the standard library: the machine under test needs
nothing but Python and the NVIDIA tools.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# The fields the server's acceptance rules use (see the issue and data-formats.md §2.1).
QUERY_FIELDS = (
    "timestamp",
    "index",
    "uuid",
    "serial",
    "temperature.gpu",
    "temperature.memory",
    "power.draw",
    "power.limit",
    "clocks.sm",
    "clocks.mem",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "ecc.errors.corrected.volatile.total",
    "ecc.errors.uncorrected.volatile.total",
    "retired_pages.pending",
    "remapped_rows.pending",
    "remapped_rows.failure",
    "clocks_event_reasons.hw_thermal_slowdown",
    "clocks_event_reasons.sw_thermal_slowdown",
    "clocks_event_reasons.hw_power_brake_slowdown",
    "pcie.link.gen.current",
    "pcie.link.width.current",
)
# A matrix-multiply stress load, when PyTorch with CUDA is importable on the host.
TORCH_LOAD = (
    "import sys,time,torch\n"
    "end=time.time()+float(sys.argv[1])\n"
    "xs=[torch.randn(8192,8192,device=f'cuda:{i}',dtype=torch.bfloat16) for i in range(torch.cuda.device_count())]\n"
    "while time.time()<end:\n"
    "    for x in xs: x@x\n"
    "    torch.cuda.synchronize()\n"
)


class AgentError(Exception):
    """A fault the operator must fix (missing tool, server refusal); printed as one line."""


@dataclass
class Server:
    url: str
    token: str
    timeout: float = 120.0

    def call(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json") -> Any:
        request = urllib.request.Request(
            self.url.rstrip("/") + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": content_type},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read())
                detail = problem.get("detail") or problem.get("title")
            except ValueError:
                detail = exc.reason
            raise AgentError(f"{method} {path}: {exc.code} {detail}") from exc
        except urllib.error.URLError as exc:
            raise AgentError(f"cannot reach {self.url}: {exc.reason}") from exc


def supported_fields(nvidia_smi: str) -> list[str]:
    """nvidia-smi refuses a whole query when one field is unsupported (exit 2), so probe each."""
    probe = subprocess.run(
        [nvidia_smi, f"--query-gpu={','.join(QUERY_FIELDS)}", "--format=csv,noheader", "-i", "0"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if probe.returncode == 0:
        return list(QUERY_FIELDS)
    fields = []
    for name in QUERY_FIELDS:
        one = subprocess.run(
            [nvidia_smi, f"--query-gpu={name}", "--format=csv,noheader", "-i", "0"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if one.returncode == 0:
            fields.append(name)
    if "index" not in fields:
        raise AgentError("nvidia-smi answers no usable query: is the driver loaded?")
    return fields


def start_load(seconds: float, choice: str) -> subprocess.Popen[bytes] | None:
    """The stress load: gpu-burn or dcgmproftester when installed, else PyTorch when it has CUDA."""
    candidates: list[tuple[str, list[str]]] = []
    if shutil.which("gpu_burn") or shutil.which("gpu-burn"):
        exe = shutil.which("gpu_burn") or shutil.which("gpu-burn")
        candidates.append(("gpu-burn", [str(exe), str(int(seconds))]))
    if shutil.which("dcgmproftester12") or shutil.which("dcgmproftester11"):
        exe = shutil.which("dcgmproftester12") or shutil.which("dcgmproftester11")
        candidates.append(("dcgmproftester", [str(exe), "--no-dcgm-validation", "-t", "1004", "-d", str(int(seconds))]))
    candidates.append(("torch", [sys.executable, "-c", TORCH_LOAD, str(seconds)]))
    for name, command in candidates:
        if choice not in ("auto", name):
            continue
        if name == "torch":
            check = subprocess.run(
                [sys.executable, "-c", "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"],
                capture_output=True,
                timeout=120,
                check=False,
            )
            if check.returncode != 0:
                continue
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if choice == "none":
        return None
    raise AgentError(f"no GPU stress load available ({choice}); install gpu-burn, or use --load none")


@dataclass
class Sampler:
    """Runs `nvidia-smi -lms` and hands over complete CSV chunks (header + rows) every chunk_s."""

    nvidia_smi: str
    fields: list[str]
    interval_ms: int
    header: str = ""
    rows: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.nvidia_smi, f"--query-gpu={','.join(self.fields)}", "--format=csv", f"-lms={self.interval_ms}"],
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            line = line.rstrip("\n")
            if not line:
                continue
            with self.lock:
                if not self.header:
                    self.header = line
                elif line != self.header:  # nvidia-smi repeats the header on some versions
                    self.rows.append(line)

    def take(self) -> bytes | None:
        with self.lock:
            if not self.rows:
                return None
            chunk, self.rows = self.rows, []
            return ("\n".join([self.header, *chunk]) + "\n").encode()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        time.sleep(0.05)  # let the reader thread drain what was printed


def kernel_log() -> bytes:
    """The kernel ring buffer's NVRM Xid lines (dmesg, else journalctl -k)."""
    for command in (["dmesg", "--time-format", "iso"], ["dmesg"], ["journalctl", "-k", "-b", "--no-pager"]):
        if shutil.which(command[0]):
            done = subprocess.run(command, capture_output=True, timeout=60, check=False)
            if done.returncode == 0:
                return b"\n".join(line for line in done.stdout.splitlines() if b"NVRM: Xid" in line)
    return b""


def run_agent(
    server: Server,
    serial: str,
    *,
    duration_s: float,
    interval_s: float = 1.0,
    chunk_s: float = 60.0,
    station: str | None = None,
    dcgm_level: int = 3,
    load: str = "auto",
    progress: Callable[[float], None] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    nvidia_smi = shutil.which("nvidia-smi")
    if nvidia_smi is None:
        raise AgentError("nvidia-smi not found on PATH: this is not a GPU machine, or the driver is missing")
    dcgmi = shutil.which("dcgmi")
    fields = supported_fields(nvidia_smi)
    if len(fields) < len(QUERY_FIELDS):
        say(f"nvidia-smi lacks {len(QUERY_FIELDS) - len(fields)} field(s); sampling {len(fields)}")
    run = server.call("POST", f"/api/v1/modules/{serial}/burn-in-runs", json.dumps({"station": station}).encode())
    run_id = run["id"]
    say(f"burn-in run {run_id} started for {serial}")
    loader = start_load(duration_s, load)
    sampler = Sampler(nvidia_smi, fields, max(100, int(interval_s * 1000)))
    sampler.start()
    started = time.monotonic()
    next_upload = started + chunk_s
    rows = 0
    try:
        while (elapsed := time.monotonic() - started) < duration_s:
            time.sleep(min(0.2, duration_s - elapsed))
            if progress:
                progress(min(elapsed, duration_s))
            if time.monotonic() >= next_upload:
                rows += _upload(server, run_id, sampler.take())
                next_upload += chunk_s
    finally:
        sampler.stop()
        if loader is not None and loader.poll() is None:
            loader.terminate()
    rows += _upload(server, run_id, sampler.take())
    say(f"telemetry: {rows} samples uploaded")
    if dcgmi:
        say(f"running dcgmi diag -r {dcgm_level}")
        diag = subprocess.run(
            [dcgmi, "diag", "-r", str(dcgm_level), "-j"], capture_output=True, timeout=7200, check=False
        )
        if diag.stdout.strip():
            server.call("POST", f"/api/v1/burn-in-runs/{run_id}/dcgm", diag.stdout)
    else:
        say("dcgmi not found: no DCGM diagnostics (the rules may require them)")
    xids = kernel_log()
    if xids:
        server.call("POST", f"/api/v1/burn-in-runs/{run_id}/xid", xids, "text/plain")
    verdict = server.call("POST", f"/api/v1/burn-in-runs/{run_id}/finish")
    verdict["run"] = run_id
    return verdict  # type: ignore[no-any-return]


def _upload(server: Server, run_id: int, chunk: bytes | None) -> int:
    if not chunk:
        return 0
    receipt = server.call("POST", f"/api/v1/burn-in-runs/{run_id}/telemetry", chunk, "text/csv")
    return int(receipt["rows"])


def token_from_env() -> str:
    return os.environ.get("AFM_TOKEN", "")
