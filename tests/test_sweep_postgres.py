"""A sweep on a real PostgreSQL server: the test starts its own (Debian's `postgresql` package: initdb and pg_ctl on a
temporary folder, listening on a Unix socket only), creates the study once, runs two workers on it, and stops the server.
.ci/run installs the package; without it the test skips, saying so."""

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("optuna")
pytest.importorskip("psycopg2")

from runs import ROOT, TINY  # noqa: E402


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


@pytest.fixture
def postgres():
    """A PostgreSQL server of the test's own, on a Unix socket in a temporary folder; yields its SQLAlchemy URL."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL is not installed (Debian's postgresql package: apt-get install -y postgresql; .ci/run installs it)")
    as_user = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the package's postgres user
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
        as_user = ["runuser", "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="fgvc-pg-"))
    os.chmod(folder, 0o755)
    data, socket_dir = folder / "data", folder / "socket"
    socket_dir.mkdir()
    if as_user:
        shutil.chown(folder, "postgres")
        shutil.chown(socket_dir, "postgres")
    run = lambda *args: subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
    made = run(initdb, "-D", str(data), "-A", "trust", "-U", "fgvc", "--no-sync")
    assert made.returncode == 0, made.stderr
    started = run(pg_ctl, "-D", str(data), "-l", str(folder / "log"), "-w", "-o", f"-k {socket_dir} -c listen_addresses=''", "start")
    assert started.returncode == 0, started.stderr + (folder / "log").read_text()
    try:
        yield f"postgresql+psycopg2://fgvc@/postgres?host={socket_dir}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_on_one_postgresql_study_finish_a_2x2_grid_each_point_once(postgres, cache, tmp_path):
    out = tmp_path / "s"
    args = [sys.executable, "-m", "fgvc_ref", "sweep", "--stage", "cosine", "--out", str(out), "--cache", str(cache), "--epochs", "2",
            "--storage", postgres, "--study", "pg", "--heartbeat", "1", "--param", "lr_scale=0.5,1", "--param", "label_smoothing=0,0.1",
            *[a for s in [*TINY, "path=fast"] for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    created = subprocess.run([*args, "--create-only"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert created.returncode == 0 and "4 grid points enqueued" in created.stderr, created.stderr
    workers = [subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=300) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [err[-2000:] for _, err in outputs]
    doc = json.loads((out / "trials.json").read_text())
    assert doc["storage"].startswith("postgresql+psycopg2://fgvc@/postgres")
    assert len(doc["trials"]) == 4 and {t["state"] for t in doc["trials"]} == {"COMPLETE"}
    assert len({json.dumps(t["params"], sort_keys=True) for t in doc["trials"]}) == 4
    import sqlalchemy

    with sqlalchemy.create_engine(postgres).connect() as db:
        assert db.execute(sqlalchemy.text("SELECT count(*) FROM trials")).scalar() == 4
        assert db.execute(sqlalchemy.text("SELECT count(DISTINCT trial_id) FROM trial_heartbeats")).scalar() == 4  # each trial beat
    assert not (out / "study.journal").exists()  # the database holds the study, not a file
