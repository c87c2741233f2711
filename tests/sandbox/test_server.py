"""``serve``: what ``autopilot sandbox`` runs. Started in a child process, as a user would."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from numerai_autopilot.sandbox.settings import SandboxSettings
from numerai_autopilot.sandbox.testing import free_port

SCRIPT = """
import sys
from pathlib import Path
from numerai_autopilot.sandbox import SandboxSettings, TEST_SIZES, parse_models, serve
serve(SandboxSettings(data_dir=Path(sys.argv[1]), public_id="PUBX", secret_key="sekrit-123",
                      models=parse_models("alpha,beta,sigs:11"), seed=3, sizes=TEST_SIZES),
      host="127.0.0.1", port=int(sys.argv[2]))
"""


def test_serve_prints_the_account_and_serves(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(tmp_path / "data"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                state = httpx.get(f"http://127.0.0.1:{port}/_sandbox/state").json()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert [m["name"] for m in state["account"]["models"]] == ["alpha", "beta", "sigs"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    ids = SandboxSettings(data_dir=tmp_path, public_id="PUBX").model_ids()
    assert "PUBX" in out and ids["alpha"] in out and "Signals" in out
    assert (out + err).count("sekrit-123") == 1  # printed once, on start, and never again
    assert (tmp_path / "data" / "manifest.json").exists()
