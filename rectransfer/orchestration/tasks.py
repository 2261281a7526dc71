"""Prefect tasks: thin wrappers of package calls, shared by the flows in ``flows/``.

I/O tasks (reading a retailer, reading or saving a model, writing Parquet) retry with backoff, since
a file share or object store can fail for a moment; pure compute (pretrain, adapt, recommend) does
not, since running it again would fail the same way. Import this module only where Prefect is
wanted: the rest of the package does not need it.

Fan-out (see :func:`export_retailers`): a retailer is made ready once (loaded, adapted if stale,
prepared) by one task; its customers are then scored in chunks by one task each
(:mod:`rectransfer.serving.fanout`), and one I/O task merges the chunks in customer order and writes
the partition. With the Dask task runner (:mod:`rectransfer.orchestration.runners`) the ready
retailer stays on the worker that made it and is copied at most once to each worker that scores a
chunk of it; the flow's process only ever receives small plans and outcomes. The fan-out tasks do
not hash their inputs for Prefect's cache (``NO_CACHE``): that would pickle a whole retailer per
task.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import polars as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, as_completed
from prefect.states import State

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError, RecTransferError
from rectransfer.model.recmodel import RecModel
from rectransfer.orchestration.isolation import run_isolated
from rectransfer.orchestration.one_retailer import RetailerJob, export_one_retailer
from rectransfer.orchestration.report import RetailerOutcome, stock_warning
from rectransfer.orchestration.staleness import adaptation_reason
from rectransfer.prepared.prepare import PreparedRetailer
from rectransfer.serving.export import check_retailer_name, write_recommendations
from rectransfer.serving.fanout import customer_chunks, merge_chunks, recommend_chunk
from rectransfer.serving.recommend import recommend
from rectransfer.text.encoder import Encoder
from rectransfer.text.load import load_encoder
from rectransfer.transfer.adapt import adapt
from rectransfer.transfer.pretrain import pretrain
from rectransfer.utils.destinations import check_model_destination, check_outside_inputs

R = TypeVar("R")

IO_RETRIES = 3
IO_RETRY_DELAYS: list[float] = [2.0, 10.0, 30.0]  # seconds: backoff between attempts


def _transient(task: object, task_run: object, state: State) -> bool:
    """Retry only failures that may pass (I/O, timeouts), never bad input or bad models."""
    try:
        state.result()
    except RecTransferError:
        return False
    except (OSError, TimeoutError):
        return True
    except Exception:
        return False
    return False


def _run_name(prefix: str) -> Callable[[], str]:
    """A task-run name that says which retailer it works on (``adapt-or-load-trailhead``)."""

    def name() -> str:
        from prefect.runtime import task_run

        # Only plain parameters: a task's upstream results may not exist yet when it is named.
        parameters = task_run.parameters
        job = parameters.get("job")
        if parameters.get("retailer"):
            retailer = str(parameters["retailer"])
        elif isinstance(job, RetailerJob):
            retailer = Path(job.folder).name
        else:
            retailer = Path(str(parameters.get("folder", ""))).name or "retailer"
        chunk = parameters.get("chunk")
        return f"{prefix}-{retailer}" + (f"-{chunk}" if chunk is not None else "")

    return name


io_task = task(
    retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS, retry_condition_fn=_transient
)


def encoder_from(spec: str, cache_dir: str | None) -> Encoder:
    return load_encoder(spec, cache_dir=cache_dir)


@io_task
def load_retailer(folder: str | Path, name: str | None = None) -> RetailerData:
    """Read and validate one retailer's folder."""
    return RetailerData.load(folder, name=name)


@io_task
def load_model_task(path: str | Path, encoder: Encoder) -> RecModel:
    return RecModel.load(path).with_encoder(encoder)


@io_task
def save_model_task(model: RecModel, path: str | Path) -> str:
    return str(model.save(path))


@task
def pretrain_task(sources: list[RetailerData], encoder: Encoder, random_state: int) -> RecModel:
    return pretrain(sources, encoder=encoder, random_state=random_state)


@task
def adapt_task(base: RecModel, data: RetailerData, random_state: int) -> RecModel:
    return adapt(base, data, random_state=random_state)


@task
def staleness_task(model_dir: str | Path, base: RecModel, max_age_days: float) -> str | None:
    return adaptation_reason(model_dir, base, max_age_days=max_age_days)


@task
def recommend_task(model: RecModel, data: RetailerData, k: int) -> pl.DataFrame:
    return recommend(model, data, k=k)


@io_task
def export_task(
    recommendations: pl.DataFrame,
    root: str | Path,
    retailer: str,
    run_date: str | None,
    version: str,
) -> str:
    path = write_recommendations(
        recommendations, root, retailer=retailer, run_date=run_date, model_version=version
    )
    return str(path)


# --- fan-out: one retailer ready once, its customers scored in chunks, one atomic write ---


@dataclass(frozen=True)
class ReadyRetailer:
    """A retailer ready to be scored: its model and its prepared data (ids, vectors, statistics)."""

    model: RecModel
    prepared: PreparedRetailer
    adapted_reason: str | None = None  # why it was adapted in this run; None: a model was reused


@dataclass(frozen=True)
class RetailerPlan:
    """What the flow needs to fan a ready retailer out: a small object, unlike the retailer."""

    retailer: str
    model_version: str
    chunks: int  # customer chunks, one recommend task each
    outcome: RetailerOutcome  # "ok" so far; export and rows are filled in once it is written


@dataclass(frozen=True)
class Written:
    """A written partition."""

    path: str
    rows: int


def _ready(model: RecModel, data: RetailerData, adapted_reason: str | None) -> ReadyRetailer:
    prepared = model.prepare(data)
    _ = prepared.serving_stats  # built once here and shipped with it, not once per chunk
    return ReadyRetailer(model, prepared, adapted_reason)


@task(cache_policy=NO_CACHE, task_run_name=_run_name("adapt-or-load"))
def adapt_or_load_task(
    folder: str | Path,
    base: RecModel,
    encoder: Encoder,
    models_root: str | Path,
    max_age_days: float,
    random_state: int,
) -> ReadyRetailer:
    """Load a retailer; adapt ``base`` to it if its model is stale (and save it), else load it."""
    data = load_retailer(folder)
    check_retailer_name(data.name)  # before adapting and scoring: it names the partition
    model_dir = Path(models_root) / Path(folder).name
    reason = staleness_task(model_dir, base, max_age_days)
    if reason is not None:
        # Before adapting: a folder there that rectransfer did not write is this retailer's
        # failure in a second, not after the adaptation (and its files are kept).
        check_model_destination(model_dir, inputs=[folder], option="models_root/<retailer>")
        model = adapt_task(base, data, random_state)
        save_model_task(model, model_dir)
    else:
        model = load_model_task(model_dir, encoder)
    return _ready(model, data, reason)


def check_models_root(
    models_root: str | Path, retailers_root: str | Path, folders: Sequence[Path], base: str | Path
) -> None:
    """Refuse a nightly ``models_root`` that would overwrite inputs, before any retailer runs.

    Models are saved to ``<models_root>/<retailer>``: that must not be, hold or lie in the
    retailers' data, and no retailer's model may land on the broad model ``base``.

    Raises
    ------
    ConfigError
        Naming the parameter and the input it would overwrite.
    """
    check_outside_inputs(
        models_root, inputs=[retailers_root], option="models_root", what="adapted models"
    )
    for folder in folders:
        check_outside_inputs(
            Path(models_root) / folder.name,
            inputs=[base],
            option="models_root/<retailer>",
            what=f"the adapted model of {folder.name!r}",
        )


@task(cache_policy=NO_CACHE, task_run_name=_run_name("load"))
def load_ready_task(
    model_path: str | Path, folder: str | Path, name: str | None, encoder: Encoder
) -> ReadyRetailer:
    """Load a model and a retailer and prepare the retailer for scoring."""
    model = load_model_task(model_path, encoder)
    data = load_retailer(folder, name)
    check_retailer_name(data.name)  # before preparing and scoring: it names the partition
    return _ready(model, data, None)


@task(cache_policy=NO_CACHE, task_run_name=_run_name("plan"))
def plan_task(ready: ReadyRetailer, chunk_size: int, retailer: str = "") -> RetailerPlan:
    """The retailer's outcome so far and how many customer chunks it makes (``retailer``: its
    folder's name, for the task run's name only)."""
    model, retailer, version = ready.model, ready.prepared.name, ready.model.model_version
    outcome = RetailerOutcome(
        retailer=retailer,
        status="ok",
        adapted=ready.adapted_reason is not None,
        reason=ready.adapted_reason,
        model_version=version,
        guard=model.guard,
        warning=stock_warning(ready.prepared.data),
    )
    chunks = len(customer_chunks(ready.prepared, chunk_size=chunk_size))
    return RetailerPlan(retailer, version, chunks, outcome)


@task(cache_policy=NO_CACHE, task_run_name=_run_name("recommend"))
def recommend_chunk_task(
    ready: ReadyRetailer, chunk: int, chunk_size: int, k: int, retailer: str = ""
) -> pl.DataFrame:
    """The recommendations of the ``chunk``-th customer chunk (see
    :mod:`rectransfer.serving.fanout`), scored on this worker's share of the cores (``retailer``
    names the task run only)."""
    rows = customer_chunks(ready.prepared, chunk_size=chunk_size)[chunk]
    return recommend_chunk(ready.model, ready.prepared, rows, k=k, threads=worker_threads())


@task(
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
    task_run_name=_run_name("write"),
)
def export_chunks_task(
    chunks: list[pl.DataFrame],
    root: str | Path,
    retailer: str,
    run_date: str | None,
    version: str,
) -> Written:
    """Merge the chunks in customer order and write the retailer's partition once, atomically."""
    recommendations = merge_chunks(chunks)
    path = write_recommendations(
        recommendations, root, retailer=retailer, run_date=run_date, model_version=version
    )
    return Written(str(path), recommendations.height)


# Futures stand for their results (Prefect resolves them where the task runs), but the tasks'
# signatures name the results: hence the type ignores on the submits below.


def submit_plan(
    ready: PrefectFuture[ReadyRetailer], *, chunk_size: int, retailer: str = ""
) -> PrefectFuture[RetailerPlan]:
    """Submit the (small) plan of a retailer being made ready."""
    return plan_task.submit(ready, chunk_size, retailer)  # type: ignore[call-overload]


def submit_export(
    ready: PrefectFuture[ReadyRetailer],
    plan: RetailerPlan,
    *,
    chunk_size: int,
    k: int,
    root: str | Path,
    run_date: str | None,
) -> tuple[PrefectFuture[Written], list[PrefectFuture[pl.DataFrame]]]:
    """Submit one recommend task per chunk of a planned retailer, and the task that writes them.

    Returns the write's future and the chunks' (for :func:`result_or_cause`).
    """
    chunks = [
        recommend_chunk_task.submit(ready, i, chunk_size, k, plan.retailer)  # type: ignore[call-overload]
        for i in range(plan.chunks)
    ]
    write = export_chunks_task.submit(chunks, root, plan.retailer, run_date, plan.model_version)
    return write, chunks


def result_or_cause(future: PrefectFuture[R], upstream: Sequence[PrefectFuture[Any]]) -> R:
    """The result of ``future``; if it failed because an upstream task failed, that task's error.

    Prefect reports a task whose input failed as "upstream task did not complete"; the error worth
    reporting is the upstream one (a retailer's bad file, say). Only failed upstream tasks are
    fetched: a failed task's result is its error, a small object, whereas a ready retailer or a
    chunk's recommendations must not travel to the flow's process.
    """
    try:
        return future.result()
    except Exception as err:
        for before in upstream:
            if before.state.is_failed():
                cause = before.result(raise_on_failure=False)
                if isinstance(cause, BaseException):
                    raise cause from None
        raise err


class _Running(NamedTuple):
    folder: Path
    plan: RetailerPlan | None  # None while the retailer is made ready and planned
    upstream: list[PrefectFuture[Any]]  # the ready retailer, then its chunks


def export_retailers(
    folders: Sequence[Path],
    make_ready: Callable[[Path], PrefectFuture[ReadyRetailer]],
    *,
    chunk_size: int,
    k: int,
    root: str | Path,
    run_date: str | None,
    in_flight: int = 1,
) -> list[RetailerOutcome]:
    """Make every retailer ready, score it in chunks and write it; one outcome per folder.

    Call it inside a flow. ``make_ready(folder)`` submits the task that makes a retailer ready. At
    most ``in_flight`` retailers are worked on at once (each holds its prepared data and chunk
    results on the workers); the next one starts when one is written or has failed. A retailer's
    failure becomes its "failed" outcome (named after its folder) and does not stop the others.
    """
    if in_flight < 1:
        raise ConfigError(f"in_flight must be a positive integer, got {in_flight!r}.")
    waiting = deque(folders)
    running: dict[PrefectFuture[Any], _Running] = {}
    outcomes: dict[Path, RetailerOutcome] = {}
    started: dict[Path, float] = {}

    def start_more() -> None:
        while waiting and len(running) < in_flight:
            folder = waiting.popleft()
            started[folder] = time.perf_counter()
            ready = make_ready(folder)
            planned = submit_plan(ready, chunk_size=chunk_size, retailer=folder.name)
            running[planned] = _Running(folder, None, [ready])

    start_more()
    while running:
        future = next(as_completed(list(running)))
        folder, plan, upstream = running.pop(future)
        try:
            if plan is None:  # planned: fan the chunks out
                plan = result_or_cause(future, upstream)
                (ready,) = upstream
                write, chunks = submit_export(
                    ready, plan, chunk_size=chunk_size, k=k, root=root, run_date=run_date
                )
                running[write] = _Running(folder, plan, list(chunks))
            else:  # written
                written: Written = result_or_cause(future, upstream)
                outcomes[folder] = plan.outcome.model_copy(
                    update={"export": written.path, "rows": written.rows}
                )
                log_outcome(outcomes[folder], time.perf_counter() - started[folder])
        except Exception as err:  # one retailer must not stop the others; the error is reported
            outcomes[folder] = RetailerOutcome(
                retailer=folder.name, status="failed", reason=f"{type(err).__name__}: {err}"
            )
            log_outcome(outcomes[folder], time.perf_counter() - started[folder])
        start_more()
    return [outcomes[folder] for folder in folders]


# --- isolation: each retailer's whole nightly work in a process of its own ---


@task(
    retries=IO_RETRIES,
    retry_delay_seconds=IO_RETRY_DELAYS,
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
    task_run_name=_run_name("nightly"),
)
def isolated_retailer_task(job: RetailerJob) -> RetailerOutcome:
    """One retailer's nightly work in a child process (:func:`export_one_retailer`).

    A crash of the child (a signal, the out-of-memory killer) raises
    :class:`~rectransfer.orchestration.isolation.ProcessDied` naming the signal; the retailer's
    own errors come back with their type and message. Retried, as a whole, on transient I/O errors
    only (the retailer's loading, saving and writing are in it), never after a crash.

    Bad input and crashes (every :class:`~rectransfer.errors.RecTransferError`) come back as a
    failed outcome rather than a raised error, so the run's log says so once, in the retailer's
    line, instead of a traceback per task; the flow still ends failed.
    """
    try:
        return run_isolated(export_one_retailer, job, name=Path(job.folder).name)
    except RecTransferError as err:
        reason = f"{type(err).__name__}: {' '.join(str(err).split())}"
        return RetailerOutcome(retailer=Path(job.folder).name, status="failed", reason=reason)


def export_retailers_isolated(
    folders: Sequence[Path], job_of: Callable[[Path], RetailerJob]
) -> list[RetailerOutcome]:
    """Each retailer in a process of its own, one after the other; one outcome per folder.

    Call it inside a flow. The outcomes are those of :func:`export_retailers` (the same rows are
    written), and a retailer whose process dies gets a "failed" outcome like any other failure.
    """
    outcomes = []
    for folder in folders:
        started = time.perf_counter()
        try:
            outcome = isolated_retailer_task.submit(job_of(folder)).result()
        except Exception as err:  # one retailer must not stop the others; the error is reported
            outcome = RetailerOutcome(
                retailer=folder.name, status="failed", reason=f"{type(err).__name__}: {err}"
            )
        log_outcome(outcome, time.perf_counter() - started)
        outcomes.append(outcome)
    return outcomes


def log_outcome(outcome: RetailerOutcome, seconds: float) -> None:
    """One line per retailer in the flow's log: what shipped, the rows, the time; or the error."""
    logger = get_run_logger()
    if outcome.status != "ok":
        logger.error("%s failed after %.0f s: %s", outcome.retailer, seconds, outcome.reason)
        return
    ships = outcome.guard.decision if outcome.guard else "model as saved"
    adapted = "adapted" if outcome.adapted else "reused its model"
    logger.info(
        "%s: %s rows, %s, ships %s (%s), %.0f s",
        outcome.retailer,
        f"{outcome.rows:,}",
        adapted,
        ships,
        outcome.model_version,
        seconds,
    )


def worker_threads() -> int | None:
    """Scoring threads for this task: on a Dask worker, the worker's own thread count (several
    worker processes on one machine each take their share, not every core); elsewhere None (the
    scoring default: the cores available, at most four)."""
    try:
        from distributed import get_worker
    except ImportError:  # no Dask installed: never on a worker
        return None
    try:
        return max(1, int(get_worker().state.nthreads))
    except (ValueError, AttributeError):  # not inside a worker
        return None
