"""A JupyterLab server starts on loopback and lists the experiment notebook through its contents API."""
import json
import os
import socket
import subprocess
import time
import urllib.request

from conftest import ROOT, tool


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_jupyterlab_lists_run_experiment(tmp_path):
    port, token = _free_port(), "oltr-test-token"
    cmd = [tool("jupyter"), "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT}", "--ServerApp.open_browser=False", "--allow-root"]
    env_dir = {"JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **env_dir})
    try:
        url = f"http://127.0.0.1:{port}/api/contents/nbs?token={token}"
        deadline, listing = time.time() + 90, None
        while time.time() < deadline and listing is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    listing = json.load(r)
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
                time.sleep(1)
        assert listing is not None, "JupyterLab did not answer within 90 s"
        names = {item["name"] for item in listing["content"]}
        assert "run_experiment.ipynb" in names
    finally:
        proc.terminate()
        proc.wait(timeout=30)
