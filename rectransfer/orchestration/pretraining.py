"""The pretrain flow's work on either runner: one process, or a Dask cluster.

``"local"`` loads the sources in the flow's process and pretrains there
(:func:`rectransfer.pretrain`, which refuses a training matrix too big for one process).
``"dask"`` connects a ``distributed.Client`` to the cluster at ``address`` (or
``$RECTRANSFER_DASK_ADDRESS``), else starts a temporary ``LocalCluster`` like the nightly's
(:data:`rectransfer.orchestration.runners.LOCAL_CLUSTER`), and runs
:func:`rectransfer.transfer.distributed.pretrain_on_dask` on it: one Dask task per source on the
workers, then LightGBM's data-parallel training across them. Only the finished model comes back to
the flow.

Unlike the nightly, the per-source work is Dask tasks rather than Prefect tasks: LightGBM's Dask
interface trains on Dask arrays whose partitions stay on the workers that built them, and a
Prefect task's result would travel back through the flow.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prefect import task

from rectransfer.errors import ConfigError
from rectransfer.model.recmodel import RecModel
from rectransfer.orchestration.runners import DASK_ADDRESS_ENV, LOCAL_CLUSTER, Runner
from rectransfer.text.encoder import Encoder
from rectransfer.transfer.distributed import pretrain_on_dask

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["dask_client", "pretrain_on_dask_task"]


@contextmanager
def dask_client(address: str | None = None) -> Iterator[Client]:
    """A ``distributed.Client`` of the cluster at ``address`` (default
    ``$RECTRANSFER_DASK_ADDRESS``), else of a temporary ``LocalCluster`` closed on exit.

    Raises
    ------
    ConfigError
        When ``distributed`` is not installed.

    Examples
    --------
    >>> with dask_client("tcp://10.0.0.5:8786") as client:  # doctest: +SKIP
    ...     print(client.scheduler_info()["workers"].keys())
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:
        raise ConfigError(
            "runner='dask' needs dask.distributed; install it with: "
            "pip install 'rectransfer[dask]'."
        ) from err
    address = address or os.environ.get(DASK_ADDRESS_ENV) or None
    if address is not None:
        with Client(address) as client:
            yield client
        return
    with LocalCluster(**LOCAL_CLUSTER) as cluster, Client(cluster) as client:
        yield client


def check_runner(runner: Runner, address: str | None) -> None:
    """Refuse an unknown runner, or a Dask address given with the local runner."""
    if runner not in ("local", "dask"):
        raise ConfigError(f"runner must be one of ['local', 'dask'], got {runner!r}.")
    if runner == "local" and address is not None:
        raise ConfigError(
            f"a Dask address ({address!r}) was given with runner='local'; pass runner='dask' "
            "to use that cluster, or no address."
        )


@task
def pretrain_on_dask_task(
    sources: list[str],
    encoder: Encoder,
    random_state: int,
    address: str | None = None,
    max_customers_per_retailer: int | None = 8_000,
) -> RecModel:
    """Pretrain on the Dask cluster at ``address`` (or a temporary local one); see
    :func:`rectransfer.transfer.distributed.pretrain_on_dask`."""
    with dask_client(address) as client:
        return pretrain_on_dask(
            sources,
            client=client,
            encoder=encoder,
            max_customers_per_retailer=max_customers_per_retailer,
            random_state=random_state,
        )
