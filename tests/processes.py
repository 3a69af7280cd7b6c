"""Real processes for crash tests: a ``celery beat`` process, killing a worker's process group, the
pids of its pool children, and the fast lease settings those tests run with."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT, CeleryWorkerProcess, redis_db_url  # noqa: F401 (re-exported)

#: Settings (as environment strings) that make leases, dispatch and retries fast enough for crash tests.
FAST_LEASES = dict(
    OUTREACH_DISPATCH_INTERVAL_SECONDS="0.5", OUTREACH_DISPATCH_LEASE_SECONDS="4", OUTREACH_SEND_LEASE_SECONDS="5",
    OUTREACH_DISPATCH_CHUNK="4", OUTREACH_RETRY_BASE_SECONDS="0.2", OUTREACH_RETRY_MAX_SECONDS="1",
    OUTREACH_INFRA_RETRY_SECONDS="0.5",
)


class Beat:
    """A real ``celery -A outreach beat`` process (the dispatcher's clock)."""

    def __init__(self, env: dict, directory: Path):
        self.env, self.directory = env, directory
        self.process: subprocess.Popen | None = None

    def start(self) -> "Beat":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "outreach", "beat", "-l", "info",
             "-s", str(self.directory / "beat-schedule"), "--pidfile="],
            cwd=REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=open(self.directory / "beat.log", "ab"), stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def child_pids(pid: int) -> list[int]:
    """The pids of ``pid``'s direct children (Linux /proc); [] when it is gone."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return []


def kill_group(worker: CeleryWorkerProcess) -> None:
    """SIGKILL the worker's whole process group (main process and pool children) and reap it."""
    if worker.process is not None:
        try:
            os.killpg(worker.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.process.wait()
        worker.process = None


def prefork_worker(base_env: dict, tmp_path: Path, *, name: str, redis_db: int, concurrency: int = 2,
                    **overrides: str) -> tuple[CeleryWorkerProcess, Beat]:
    """A prefork worker and a beat on their own Redis database (``redis_db`` + this xdist worker's number)
    with FAST_LEASES and ``overrides`` in their environment. Not started."""
    from django.conf import settings

    xdist = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    env = {**base_env, **FAST_LEASES, **overrides, "CELERY_BROKER_URL": redis_db_url(settings.CELERY_BROKER_URL, redis_db + xdist)}
    worker = CeleryWorkerProcess(env, tmp_path / "worker.log", nodename=f"{name}@%h",
                                 args=("--pool=prefork", f"--concurrency={concurrency}", "--prefetch-multiplier=1"))
    return worker, Beat(env, tmp_path)
