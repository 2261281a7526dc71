"""Where the flows' tasks run: in the flow's own process, or on a Dask cluster.

``"local"`` runs one task at a time in the flow's process, as the flows always have. ``"dask"``
hands every task to a Dask cluster through ``prefect-dask`` (``pip install 'rectransfer[dask]'``):
the one at ``address`` (or ``$RECTRANSFER_DASK_ADDRESS``), else a temporary
``distributed.LocalCluster`` of two single-threaded worker processes on this machine. Workers
must be able to import ``rectransfer`` and the project's ``flows`` package and read the same
retailer folders, model directories and export root as the flow (see docs/SCALING.md).

Import this module only where Prefect is wanted, like :mod:`rectransfer.orchestration.tasks`.
"""

from __future__ import annotations

import os
from typing import Any, Literal, TypeVar, get_args

from prefect import Flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from rectransfer.errors import ConfigError

__all__ = [
    "DASK_ADDRESS_ENV",
    "LOCAL_CLUSTER",
    "Runner",
    "retailers_in_flight",
    "task_runner",
    "with_runner",
]

Runner = Literal["local", "dask"]
DASK_ADDRESS_ENV = "RECTRANSFER_DASK_ADDRESS"
# A temporary cluster on this machine: separate processes (as on a real cluster, every task's
# inputs and outputs cross a process boundary) with one thread each, since LightGBM and BLAS
# already use a core each. ":0" picks a free dashboard port, so several flows can run at once.
LOCAL_CLUSTER: dict[str, Any] = {
    "n_workers": 2,
    "threads_per_worker": 1,
    "processes": True,
    "dashboard_address": ":0",
}

R = TypeVar("R")


def task_runner(runner: Runner = "local", *, address: str | None = None) -> TaskRunner[Any]:
    """The Prefect task runner for ``runner``.

    Parameters
    ----------
    runner
        ``"local"``: tasks run one at a time in the flow's process. ``"dask"``: tasks run on a Dask
        cluster.
    address
        With ``"dask"``: the scheduler's address, e.g. ``"tcp://10.0.0.5:8786"``. Default:
        ``$RECTRANSFER_DASK_ADDRESS``; when that is unset too, a temporary ``LocalCluster``
        (``LOCAL_CLUSTER``) starts with the flow and stops after it.

    Raises
    ------
    ConfigError
        For another runner name, an address with the local runner, or ``"dask"`` without
        ``prefect-dask`` installed.

    Examples
    --------
    >>> type(task_runner("local")).__name__
    'ThreadPoolTaskRunner'
    >>> task_runner("dask", address="tcp://10.0.0.5:8786")  # doctest: +SKIP
    """
    if runner not in get_args(Runner):
        raise ConfigError(f"runner must be one of {list(get_args(Runner))}, got {runner!r}.")
    if runner == "local":
        if address is not None:
            raise ConfigError(
                f"a Dask address ({address!r}) was given with runner='local'; pass runner='dask' "
                "to use that cluster, or no address."
            )
        # One worker thread: the flows run their tasks one after the other, in submission order.
        return ThreadPoolTaskRunner(max_workers=1)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as err:
        raise ConfigError(
            "runner='dask' needs prefect-dask; install it with: pip install 'rectransfer[dask]'."
        ) from err
    address = address or os.environ.get(DASK_ADDRESS_ENV) or None
    if address is not None:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=LOCAL_CLUSTER)


def with_runner(
    flow: Flow[..., R], runner: Runner = "local", *, address: str | None = None
) -> Flow[..., R]:
    """``flow`` with its tasks on ``runner`` (see :func:`task_runner`).

    Examples
    --------
    >>> from flows.nightly import nightly_run  # doctest: +SKIP
    >>> with_runner(nightly_run, "dask", address="tcp://10.0.0.5:8786")(params)  # doctest: +SKIP
    """
    return flow.with_options(task_runner=task_runner(runner, address=address))


def retailers_in_flight(runner: Runner, requested: int) -> int:
    """How many retailers a run works on at once: ``requested`` on Dask, one locally.

    One at a time locally keeps the flow's memory as it always was.
    Each retailer in flight holds its prepared data and its chunks' results on the workers.
    """
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ConfigError(f"parallel_retailers must be a positive integer, got {requested!r}.")
    return 1 if runner == "local" else requested
