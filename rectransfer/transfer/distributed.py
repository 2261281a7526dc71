"""Pretraining past one machine: each source's rows built on a Dask worker, the broad ranker
trained data-parallel across the workers with LightGBM's own Dask interface.

Two steps, both on existing engines:

1. **One task per source** (:func:`source_part`) loads its folder on a worker, prepares it (text
   vectors through the shared on-disk embedding cache, behaviour statistics) and builds its
   sampled training lists exactly as :func:`rectransfer.transfer.pretrain.pretrain` does (the same
   cuts, caps, customer keys and seeds, sources in name order). Raw tables never meet in one
   process; only each source's training rows stay on the worker that built them.
2. **Data-parallel training** with :class:`lightgbm.dask.DaskLGBMRanker`: the rows become Dask
   arrays with one partition per source (whole query groups in each, with that partition's group
   sizes) and each worker trains on the partitions it holds, LightGBM's workers exchanging
   histograms. ``booster_`` is an ordinary LightGBM booster, saved as a normal broad model.

LightGBM's Dask interface has neither early stopping nor ``init_model``, so the number of rounds is
chosen beforehand (see :func:`pretrain_on_dask`).

Needs ``dask[array]`` and ``distributed`` (``pip install 'rectransfer[dask]'``); this module
imports them only when called.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError, SchemaError
from rectransfer.model.recmodel import RecModel
from rectransfer.prepared.prepare import prepare
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.ranking.ranker import (
    BROAD_EARLY_STOPPING_ROUNDS,
    BROAD_PARAMS,
    BROAD_ROUNDS,
    train_ranker,
)
from rectransfer.ranking.training_data import LabelledRows
from rectransfer.text.encoder import Encoder
from rectransfer.text.load import load_encoder
from rectransfer.transfer.pretrain import (
    DEFAULT_VIRTUAL_SHOPS,
    EARLY_STOPPING_SHARE,
    MIN_TRAINING_LISTS,
    broad_config,
    source_rows,
    split_by_customer,
)
from rectransfer.transfer.virtual_shops import check_fractions
from rectransfer.utils.progress import stage

if TYPE_CHECKING:
    from distributed import Client, Future

__all__ = ["ROUNDS_SAMPLE_LISTS", "SourcePart", "pretrain_on_dask", "source_part"]

# Training lists (across all sources) brought into the coordinating process to choose the number
# of rounds by early stopping: ~10 MB of features per 1,000 lists, so at most ~200 MB whatever the
# number of sources, and 2,000 held-out lists, well above the 150 early stopping needs.
ROUNDS_SAMPLE_LISTS = 20_000
# Parameters left out of the distributed run: LightGBM's Dask interface sets the threads itself (as
# many as each worker has, its ``--nthreads``), and with no validation set there is nothing to
# evaluate (``eval_at`` in the parameters also makes every worker warn).
_NOT_FOR_DASK = ("num_threads", "n_jobs", "metric", "eval_at")


@dataclass(frozen=True)
class SourcePart:
    """One source's training rows, as built on a worker.

    ``features``, ``label`` and ``group_sizes`` are the partition LightGBM trains on (only lists
    whose next item is among their candidates; whole lists, in order); ``sample`` is a seeded
    subsample of all its lists (labelled or not, as one-process pretraining splits them), with
    their customer keys, for choosing the number of rounds.
    """

    name: str
    features: np.ndarray  # float32 (rows, len(FEATURE_NAMES))
    label: np.ndarray  # int8 (rows,)
    group_sizes: np.ndarray  # int64 (lists,), sums to rows
    sample: LabelledRows
    n_lists: int
    n_queries: int

    @property
    def n_rows(self) -> int:
        return len(self.label)


def source_name(source: RetailerData | str | Path) -> str:
    """The name a source trains under: its own for loaded data, else its folder's name (as
    :meth:`RetailerData.load` names it)."""
    return source.name if isinstance(source, RetailerData) else Path(source).name


def source_part(
    source: RetailerData | str | Path,
    index: int,
    *,
    encoder: Encoder,
    candidates: CandidateConfig,
    cuts: int,
    max_customers_per_retailer: int | None,
    random_state: int,
    sample_lists: int,
    fractions: Sequence[float] = DEFAULT_VIRTUAL_SHOPS,
) -> SourcePart:
    """Load, prepare and sample one source: the work of one Dask task.

    ``index`` is the source's position in name order; customer keys (``index << 40``) and the seed
    (``random_state + index``) follow it, as in one-process pretraining, so both build the same
    rows from the same sources.

    Examples
    --------
    >>> import rectransfer as rt
    >>> part = source_part(
    ...     "sample_data/sources/harbor_home", 0, encoder=rt.load_encoder("hashing"),
    ...     candidates=rt.CandidateConfig(), cuts=3, max_customers_per_retailer=8_000,
    ...     random_state=0, sample_lists=100,
    ... )
    >>> part.name, int(part.group_sizes.sum()) == part.n_rows, part.sample.n_groups <= 100
    ('harbor_home', True, True)
    """
    data = source if isinstance(source, RetailerData) else RetailerData.load(source)
    rows = source_rows(
        prepare(data, encoder),
        index,
        candidates=candidates,
        cuts=cuts,
        per_cut=None
        if max_customers_per_retailer is None
        else max(1, max_customers_per_retailer // cuts),
        fractions=fractions,
        random_state=random_state,
    )
    # The sample is drawn from every list, as one-process pretraining splits them (its training
    # keeps only lists with their label among the candidates): when the sample holds all of a
    # source's lists, the rounds chosen on it are exactly one-process pretraining's.
    keep = np.arange(rows.n_groups)
    if rows.n_groups > sample_lists:
        rng = np.random.default_rng(random_state + index)
        keep = np.sort(rng.choice(rows.n_groups, size=sample_lists, replace=False))
    sample = rows.subset_groups(keep)
    n_queries = rows.n_queries
    rows = rows.positives_only()
    return SourcePart(
        name=data.name,
        features=np.ascontiguousarray(rows.rows.features, dtype=np.float32),
        label=rows.rows.label.astype(np.int8, copy=False),
        group_sizes=rows.group_sizes().astype(np.int64),
        sample=sample,
        n_lists=rows.n_groups,
        n_queries=n_queries,
    )


def _summary(part: SourcePart) -> tuple[str, int, int, int]:
    return part.name, part.n_rows, part.n_lists, part.n_queries


def pretrain_on_dask(
    sources: Sequence[RetailerData | str | Path],
    *,
    client: Client,
    encoder: Encoder | None = None,
    candidates: CandidateConfig | None = None,
    max_customers_per_retailer: int | None = 8_000,
    cuts: int = 3,
    max_rounds: int = BROAD_ROUNDS,
    rounds: int | None = None,
    params: dict[str, Any] | None = None,
    random_state: int = 0,
    early_stopping_rounds: int = BROAD_EARLY_STOPPING_ROUNDS,
    sample_lists: int = ROUNDS_SAMPLE_LISTS,
    virtual_shops: Sequence[float] = DEFAULT_VIRTUAL_SHOPS,
) -> RecModel:
    """Train the broad ranker on the Dask cluster behind ``client``; the same model contract as
    :func:`rectransfer.pretrain`.

    One task per source builds its rows on a worker (:func:`source_part`); the rows stay there, one
    Dask array partition per source, and :class:`lightgbm.dask.DaskLGBMRanker` trains on them
    data-parallel. The result is an ordinary broad :class:`RecModel` (``kind="broad"``) that
    saves, loads, adapts and serves like a one-process one.

    **How many rounds.** LightGBM's Dask interface has no early stopping, so the rounds are chosen
    before the distributed run. With ``rounds=None`` (the default) they come from a one-process
    run on a sample: up to ``sample_lists`` lists, drawn evenly from the sources (seeded), are split
    by customer as in one-process pretraining (10% held out) and trained with early stopping
    (``max_rounds``, ``early_stopping_rounds``, and, below 150 held-out lists, the same fixed share
    of ``max_rounds``); the distributed run then trains that many rounds on all the rows. This
    keeps pretraining's own rule for rounds at a bounded cost (the sample, ~10 MB per 1,000 lists,
    does not grow with the sources), rather than a fixed count that suits one source mix and not
    another; while the sample holds every list, the rounds are exactly one-process pretraining's.
    A sample has less data than the whole, and more data usually carries more rounds, so beyond
    that the choice leans short; pass ``rounds`` to train exactly that many instead (e.g. the
    rounds a one-process model recorded in its ``config.rounds["broad"]``).

    Unlike one-process pretraining, no customers are held out of the distributed run (rounds are
    already chosen), so it trains on all the sampled lists.

    Parameters
    ----------
    sources
        Retailer folders (loaded on the workers, which must read them at the same paths) or
        loaded :class:`RetailerData` (sent to a worker).
    client
        A ``distributed.Client``; its workers need ``rectransfer`` importable.
    encoder
        As in :func:`rectransfer.pretrain`; it is sent to every worker, so a cached encoder's
        cache folder should be shared by them.
    max_customers_per_retailer, cuts, max_rounds, params, random_state, early_stopping_rounds
        As in :func:`rectransfer.pretrain`.
    rounds
        Boosting rounds of the distributed run; ``None`` chooses them on a sample (above).
    sample_lists
        Training lists of the sample that chooses the rounds.

    Raises
    ------
    ConfigError
        No sources, duplicate names, or bad ``cuts`` / ``rounds`` / ``sample_lists``.
    SchemaError
        Fewer than ``MIN_TRAINING_LISTS`` training lists over all sources.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> import rectransfer as rt  # doctest: +SKIP
    >>> with LocalCluster(n_workers=2, threads_per_worker=1) as cluster, Client(cluster) as client:
    ...     broad = pretrain_on_dask(
    ...         ["sample_data/sources/harbor_home", "sample_data/sources/summit_supply"],
    ...         client=client, encoder=rt.load_encoder("hashing"),
    ...     )  # doctest: +SKIP
    >>> broad.save("models/broad")  # doctest: +SKIP
    """
    if not sources:
        raise ConfigError("pretrain_on_dask needs at least one source retailer; none was given.")
    if isinstance(cuts, bool) or not isinstance(cuts, int) or cuts < 1:
        raise ConfigError(f"cuts must be a positive integer, got {cuts!r}.")
    if rounds is not None and (
        isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1
    ):
        raise ConfigError(
            "rounds must be a positive integer, or None to choose them on a sample; "
            f"got {rounds!r}."
        )
    if isinstance(sample_lists, bool) or not isinstance(sample_lists, int) or sample_lists < 1:
        raise ConfigError(f"sample_lists must be a positive integer, got {sample_lists!r}.")
    names = [source_name(s) for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"source retailers need distinct names, got {names!r}.")
    encoder = encoder if encoder is not None else load_encoder()
    candidates = candidates or CandidateConfig()
    params = dict(params or BROAD_PARAMS)
    # In name order, like one-process pretraining: the same seeds and customer keys per source.
    fractions = check_fractions(virtual_shops)
    ordered = sorted(zip(names, sources, strict=True), key=operator.itemgetter(0))
    names = [name for name, _ in ordered]
    per_source = max(1, -(-sample_lists // len(ordered)))  # ceil: the sample is spread evenly

    stage(f"building the training rows of {len(ordered)} sources on the Dask workers")
    parts: list[Future] = [
        client.submit(
            source_part,
            source,
            i,
            encoder=encoder,
            candidates=candidates,
            cuts=cuts,
            max_customers_per_retailer=max_customers_per_retailer,
            random_state=random_state,
            sample_lists=per_source,
            fractions=fractions,
            pure=False,  # a new key each run: never another run's rows (other encoder, seed)
        )
        for i, (_, source) in enumerate(ordered)
    ]
    summaries = client.gather([client.submit(_summary, part, pure=False) for part in parts])
    n_lists = sum(s[2] for s in summaries)
    n_rows = sum(s[1] for s in summaries)
    stage(f"training lists: {n_lists:,} from {len(ordered)} sources ({n_rows:,} rows)")
    if n_lists < MIN_TRAINING_LISTS:
        raise SchemaError(
            f"interactions of {names!r}: only {n_lists} training lists (a returning customer "
            f"whose next item is among the candidates); pretraining needs {MIN_TRAINING_LISTS}. "
            "Give sources with more customers who came back."
        )

    how = "given"
    if rounds is None:
        samples = client.gather([client.submit(operator.attrgetter("sample"), p) for p in parts])
        how = f"early stopping on a sample of {sum(s.n_groups for s in samples):,} lists"
        rounds = _rounds_on_a_sample(
            samples,
            params=params,
            max_rounds=max_rounds,
            random_state=random_state,
            patience=early_stopping_rounds,
        )
    stage(f"training the broad model on the Dask workers: {rounds} rounds ({how})")
    booster = _train_on_dask(client, parts, summaries, params, rounds, random_state)

    config = broad_config(
        encoder,
        candidates,
        {
            **params,
            "cuts": cuts,
            "early_stopping_rounds": early_stopping_rounds,
            **({"virtual_shops": list(fractions)} if fractions else {}),
            "trained_with": "lightgbm.dask.DaskLGBMRanker",
            "rounds_from": how,
        },
        rounds=rounds,
        trained_on=names,
        random_state=random_state,
    )
    return RecModel(booster, config, encoder=encoder)


def _rounds_on_a_sample(
    samples: list[LabelledRows],
    *,
    params: dict[str, Any],
    max_rounds: int,
    random_state: int,
    patience: int,
) -> int:
    """Rounds chosen by one-process pretraining's own early stopping, on the sources' samples."""
    rows = LabelledRows.concat(samples)
    train, valid = split_by_customer(
        rows, test_size=EARLY_STOPPING_SHARE, random_state=random_state
    )
    _, rounds = train_ranker(
        train,
        valid,
        params=params,
        max_rounds=max_rounds,
        random_state=random_state,
        patience=patience,
        label="the sample that chooses the rounds",
    )
    return rounds


def _train_on_dask(
    client: Client,
    parts: list[Future],
    summaries: list[tuple[str, int, int, int]],
    params: dict[str, Any],
    rounds: int,
    random_state: int,
) -> Any:
    """``DaskLGBMRanker`` over one partition per source (sources without lists left out)."""
    import dask
    import dask.array as da
    from lightgbm.dask import DaskLGBMRanker

    def partition(part: Future, field: str, shape: tuple[int, ...], dtype: type) -> Any:
        piece = client.submit(operator.attrgetter(field), part, pure=False)
        return da.from_delayed(dask.delayed(piece), shape=shape, dtype=dtype)

    n_features = len(FEATURE_NAMES)
    kept = [(p, s) for p, s in zip(parts, summaries, strict=True) if s[2] > 0]
    features = da.concatenate(
        [partition(p, "features", (s[1], n_features), np.float32) for p, s in kept]
    )
    label = da.concatenate([partition(p, "label", (s[1],), np.int8) for p, s in kept])
    group = da.concatenate([partition(p, "group_sizes", (s[2],), np.int64) for p, s in kept])
    ranker_params = {k: v for k, v in params.items() if k not in _NOT_FOR_DASK}
    ranker = DaskLGBMRanker(
        client=client, n_estimators=rounds, random_state=random_state, **ranker_params
    )
    with warnings.catch_warnings():
        # The sklearn interface always passes n_jobs; the Dask interface says it ignores it (each
        # worker's LightGBM uses that worker's threads), which is what is wanted here.
        warnings.filterwarnings("ignore", message="Parameter n_jobs will be ignored")
        ranker.fit(features, label, group=group, feature_name=list(FEATURE_NAMES))
    return ranker.booster_
