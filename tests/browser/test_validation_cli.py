"""`afm validation import` against the running service, as an engineer's laptop at a site would call it:
result files judged by the suite, verdicts printed, the exit status saying whether the run passed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from app.core.config import PROJECT_ROOT
from tests.browser.test_pages import _api, _token

AFM = Path(sys.executable).parent / "afm"
RESULTS = PROJECT_ROOT / "fixtures" / "validation"


def test_import_prints_verdicts_and_fails_below_threshold(base_url: str) -> None:
    token = _token(base_url, "engineer")
    serial = _api(base_url, "GET", "/api/v1/modules?state=validating&spec=GB200-NVL72-40&limit=1", token)["items"][0][
        "serial"
    ]
    done = subprocess.run(
        [
            str(AFM),
            "validation",
            "import",
            "--server",
            base_url,
            "--token",
            token,
            serial,
            f"dcgm-diag={RESULTS / 'dcgm-diag-pass.json'}",
            f"nccl-all-reduce={RESULTS / 'nccl-all-reduce-hgx-h200-pass.txt'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # 479 GB/s is a fine HGX H200 result but below what an NVL72 rack must reach: the run fails
    assert done.returncode == 1, done.stdout + done.stderr
    assert "validation run" in done.stdout and serial in done.stdout
    assert "dcgm-diag: pass" in done.stdout and "nccl-all-reduce: fail" in done.stdout
    assert "below the required 650" in done.stdout
    refused = subprocess.run(
        [
            str(AFM),
            "validation",
            "import",
            "--server",
            base_url,
            "--token",
            token,
            serial,
            "nccl-all-reduce=/nonexistent",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0 and "no such file" in refused.stderr
