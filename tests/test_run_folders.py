"""A run folder's lock is the kernel's: a holder killed with SIGKILL leaves the folder free for the next run."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from oltr_nb.config import make_config
from oltr_nb.core import InputError
from oltr_nb.run_folder import own_run_folder

HOLDER = textwrap.dedent("""
    import sys, time
    from oltr_nb.config import make_config
    from oltr_nb.run_folder import own_run_folder
    with own_run_folder(make_config("digits_lt", "plain", 1, out_dir=sys.argv[1])):
        print("held", flush=True)
        time.sleep(600)
""")


def test_killed_holder_leaves_the_folder_free(tmp_path):
    cfg = make_config("digits_lt", "plain", 1, out_dir=str(tmp_path))
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match=f"is in use by another run \\(process {holder.pid} on "):
            with own_run_folder(cfg):
                pass
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=60)
        with own_run_folder(cfg) as folder:  # the kernel released the dead holder's lock
            assert (folder / ".lock").read_text().startswith(f"{os.getpid()} on ")
    finally:
        if holder.poll() is None:
            holder.kill()
