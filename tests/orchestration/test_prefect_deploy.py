"""The documented deployment, for real: the README's "Run it every night" commands.

A `prefect server` on a free loopback port (its own temporary home), the `rectransfer` process work
pool, `prefect deploy --all` from the project's `prefect.yaml`, `prefect deployment ls`, a process
worker (`prefect worker start --pool rectransfer`) and a run of the `recommend` deployment on the
sample target shop, with a model trained here on the sample sources. The temporary server of
`prefect_harness` never reaches the endpoints that `prefect deploy` and `prefect deployment ls` call
(FastAPI 0.151 to 0.154 answer them 422), so this test runs the real ones. About 40 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from tests.conftest import ROOT, SAMPLE_DATA

try:
    import psutil  # with the dask extra
except ImportError:  # pragma: no cover
    psutil = None

pytestmark = pytest.mark.deploy

PREFECT = str(Path(sys.executable).with_name("prefect"))
DEPLOYMENTS = {  # deployment: flow
    "pretrain-monthly": "rectransfer-pretrain",
    "adapt-weekly": "rectransfer-adapt",
    "recommend": "rectransfer-recommend",
    "nightly": "rectransfer-nightly",
}
RETAILER = SAMPLE_DATA / "targets" / "trailhead_market"
RUN_DATE = "2026-11-23"
K = 5
STARTUP_SECONDS = 120
RUN_SECONDS = 240


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PrefectProject:
    """Runs `prefect` commands from the project root against one temporary server."""

    tmp: Path
    api_url: str
    env: dict[str, str]
    processes: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def run(self, *args: str, timeout: float = 180) -> str:
        """Run `prefect *args`; its output, or a failed test that shows it."""
        done = subprocess.run(
            [PREFECT, *args],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"prefect {' '.join(args)} failed:\n{output}"
        return output

    def start(self, name: str, *args: str, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
        """Start `prefect *args` in its own process group, its output to a log file."""
        log = self.tmp / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [PREFECT, *args],
                cwd=cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((process, log))
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}" for _, log in self.processes)

    def stop(self) -> None:
        """Stop every started process group: TERM, then KILL what is left after 15 s.

        The worker starts each flow run in a session of its own, so a run still going when the
        test stops (a failed test) is killed by its process id.
        """
        descendants = [child for process, _ in self.processes for child in _descendants(process)]
        for process, _ in reversed(self.processes):
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process, _ in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # the group: children left behind
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):  # checks the pid was not reused
                child.kill()

    def client(self) -> SyncPrefectClient:
        return SyncPrefectClient(api=self.api_url)


def _descendants(process: subprocess.Popen[bytes]) -> list[Any]:
    if psutil is None or process.poll() is not None:
        return []
    try:
        return list(psutil.Process(process.pid).children(recursive=True))
    except psutil.NoSuchProcess:
        return []


def _environment(tmp: Path, api_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and k != "RECTRANSFER_PROJECT_DIR"
    }
    env.update(
        {
            "PREFECT_HOME": str(tmp / "prefect_home"),
            "PREFECT_API_URL": api_url,
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_CLI_PROMPT": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_LOGGING_LEVEL": "INFO",
            "RECTRANSFER_CACHE_DIR": str(tmp / "cache"),
            "COLUMNS": "200",  # tables of the command line untruncated
            # this checkout's package and flows, in the worker's flow runs too
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p
            ),
        }
    )
    return env


def _wait_healthy(project: PrefectProject, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited:\n{project.logs()}"
        try:
            with urllib.request.urlopen(f"{project.api_url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {STARTUP_SECONDS} s:\n{project.logs()}")


def _train_model(folder: Path, cache: Path) -> Path:
    """A small broad model on the sample sources with the hashing encoder (a few seconds)."""
    import rectransfer as rt

    sources = sorted((SAMPLE_DATA / "sources").iterdir())
    model = rt.pretrain(
        sources,
        encoder=rt.load_encoder("hashing", cache_dir=cache),
        random_state=0,
        max_customers_per_retailer=200,
        max_rounds=20,
        early_stopping_rounds=5,
    )
    return model.save(folder)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PrefectProject, str]]:
    """The README's commands up to `prefect deploy --all`; the output of `prefect deploy`."""
    tmp = tmp_path_factory.mktemp("prefect_deploy")
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    project = PrefectProject(tmp, api_url, _environment(tmp, api_url))
    try:
        # no UI and no background services (no scheduler: the deployed schedules make no runs)
        server = project.start(
            "server",
            *("server", "start", "--host", "127.0.0.1", "--port", str(port)),
            *("--no-ui", "--no-services"),
        )
        _train_model(tmp / "model", tmp / "cache")  # while the server starts
        _wait_healthy(project, server)
        project.run("work-pool", "create", "rectransfer", "--type", "process")
        output = project.run("deploy", "--all")
        yield project, output
    finally:
        project.stop()


def test_deploy_registers_every_deployment_without_a_project_dir_variable(deployed):
    project, output = deployed
    assert "RECTRANSFER_PROJECT_DIR" not in project.env
    for name, flow_name in DEPLOYMENTS.items():
        assert f"'{flow_name}/{name}' successfully created" in output, output

    listing = project.run("deployment", "ls")  # it crashed with a 422 on FastAPI 0.151-0.154
    for name, flow_name in DEPLOYMENTS.items():
        assert f"{flow_name}/{name}" in listing, listing

    with project.client() as client:
        deployments = client.read_deployments()
    assert {d.name for d in deployments} == set(DEPLOYMENTS)
    for d in deployments:
        assert d.work_pool_name == "rectransfer"
        # the worker moves to this checkout's root, resolved when deploying
        assert d.pull_steps == [
            {"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}
        ], d.pull_steps
    scheduled = {d.name for d in deployments if d.schedules}
    assert scheduled == {"pretrain-monthly", "adapt-weekly", "nightly"}


def test_recommend_deployment_runs_on_a_process_worker(deployed):
    project, _ = deployed
    tmp = project.tmp
    params = {
        "model": str(tmp / "model"),
        "retailer": str(RETAILER),
        "out": str(tmp / "exports"),
        "k": K,
        "encoder": "hashing",
        "cache_dir": str(tmp / "cache"),
    }
    # flat parameters: one of them (a backfill's date) can be given on its own
    output = project.run(
        "deployment",
        "run",
        "rectransfer-recommend/recommend",
        "--params",
        json.dumps(params),
        "--param",
        f"run_date={RUN_DATE}",
    )
    match = re.search(r"UUID: ([0-9a-f-]{36})", output)
    assert match, output
    flow_run_id = match.group(1)

    # started elsewhere: the deployment's pull step alone takes its runs to the project
    worker = project.start("worker", "worker", "start", "--pool", "rectransfer", cwd=tmp)
    with project.client() as client:
        deadline = time.monotonic() + RUN_SECONDS
        while True:
            flow_run = client.read_flow_run(flow_run_id)
            if flow_run.state is not None and flow_run.state.is_final():
                break
            assert worker.poll() is None, f"the worker exited:\n{project.logs()}"
            assert time.monotonic() < deadline, f"no final state:\n{project.logs()}"
            time.sleep(1)
        assert flow_run.state.is_completed(), f"{flow_run.state}\n{project.logs()}"
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )

    part = tmp / "exports" / "retailer=trailhead_market" / f"run_date={RUN_DATE}" / "part-0.parquet"
    frame = pl.read_parquet(part, hive_partitioning=True)
    assert frame.columns == [
        "user_id",
        "item_id",
        "rank",
        "score",
        "source",
        "model_version",
        "retailer",  # the partition keys, from the path
        "run_date",
    ]
    customers = set(pl.read_parquet(RETAILER / "interactions.parquet")["user_id"]) | set(
        pl.read_parquet(RETAILER / "users.parquet")["user_id"]
    )
    assert set(frame["user_id"]) == customers
    assert frame.height == K * len(customers)
    assert frame.group_by("user_id").agg(pl.col("rank").sort())["rank"].to_list() == [
        list(range(1, K + 1))
    ] * len(customers)
    assert set(frame["retailer"]) == {"trailhead_market"}
    items = set(pl.read_parquet(RETAILER / "items.parquet")["item_id"])
    assert set(frame["item_id"]) <= items
    (version,) = set(frame["model_version"])
    assert version.startswith("broad-")

    (artifact,) = [a for a in artifacts if a.key == "rectransfer-recommend"]
    assert artifact.type == "markdown"
    assert "trailhead_market" in artifact.data
    assert f"| {frame.height} |" in artifact.data
    assert str(part) in artifact.data
    assert version in artifact.data
