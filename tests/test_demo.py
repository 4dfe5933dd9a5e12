"""The README's main job: ``python3 dev.py demo`` runs ``velaria.demo`` end to end."""
from __future__ import annotations

import subprocess
import sys


def test_demo_runs_batch_files_vectors_and_a_stream():
    done = subprocess.run([sys.executable, "-m", "velaria.demo"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    assert "== explain_sql" in out and "== vector_search" in out
    # the stream section: each micro-batch emits the groups it updated, with exact running sums
    assert "batch: [['1970-01-01T00:01:00', 'ACME', 10]]" in out
    assert "'status': 'stopped'" in out and "'batches_processed': 3" in out
    explain = out[out.index("== explain_stream_sql"):]
    assert [line for line in explain.splitlines() if line in ("logical", "physical", "strategy")] == \
        ["logical", "physical", "strategy"]
    assert "ColumnNotFoundError" in out
