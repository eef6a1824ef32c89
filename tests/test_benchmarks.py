"""Every script in benchmarks/ runs with --tiny (tiny inputs, seconds), so none can rot unnoticed.

The folder is globbed: a new script is covered without touching this file. Modules whose name starts with `_`
are helpers, not scripts. Nothing here looks at the figures the scripts print: they mean nothing at this size.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(path for path in (ROOT / "benchmarks").glob("*.py") if not path.name.startswith("_"))


def test_the_folder_has_scripts():
    assert len(SCRIPTS) >= 9 and all(path.name.startswith("bench_") for path in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_benchmark_runs_with_tiny_inputs(script, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "TMPDIR": str(tmp_path)}  # scripts that keep their files for inspection leave them here
    done = subprocess.run([sys.executable, str(script), "--tiny"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{script.name} --tiny failed:\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), f"{script.name} --tiny printed nothing"
    assert "Traceback" not in done.stderr
