"""The broad behaviour model: one ranker learnt from many retailers' interactions at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupShuffleSplit

from rectransfer.data.retailer import RetailerData
from rectransfer.errors import ConfigError, SchemaError
from rectransfer.model.config import EncoderInfo, ModelConfig
from rectransfer.model.recmodel import RecModel
from rectransfer.prepared.catalogue import Catalogue
from rectransfer.prepared.prepare import PreparedRetailer, prepare
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.ranking.ranker import (
    BROAD_EARLY_STOPPING_ROUNDS,
    BROAD_PARAMS,
    BROAD_ROUNDS,
    train_ranker,
)
from rectransfer.ranking.training_data import LabelledRows, labelled_rows
from rectransfer.text.encoder import Encoder
from rectransfer.text.load import encoder_spec, load_encoder
from rectransfer.transfer.sizing import check_fits_one_process
from rectransfer.transfer.source_weights import (
    SOURCE_KEY_SHIFT,
    SOURCE_SAMPLE,
    neighbour_shares,
    row_weighting,
    sample_rows,
    weights_from_shares,
)
from rectransfer.transfer.virtual_shops import check_fractions, virtual_shop
from rectransfer.utils.progress import stage, timed
from rectransfer.utils.versions import library_versions, now_iso
from rectransfer.utils.versions import package_version as _package_version

EARLY_STOPPING_SHARE = 0.1  # customers held out (by customer, across all sources) to pick rounds
MIN_TRAINING_LISTS = 10
MAX_TRAINING_NEGATIVES = 100  # per training list; 150 was no better on the loop (BENCHMARKS)
# Each source also enters as a seeded 10% of its customers, a small shop of its own: chosen on the
# leave-one-source-out loop (docs/BENCHMARKS.md), where it lifted the broad model at f = 0.1.
DEFAULT_VIRTUAL_SHOPS = (0.1,)


def split_by_customer(
    rows: LabelledRows, *, test_size: float, random_state: int
) -> tuple[LabelledRows, LabelledRows]:
    """Split groups so that every customer's groups land on one side (no leakage across cuts)."""
    if rows.n_groups < 2:
        return rows, rows.subset_groups(np.zeros(0, dtype=np.int64))
    splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=random_state)
    train_idx, valid_idx = next(splitter.split(np.zeros(rows.n_groups), groups=rows.group_customer))
    return rows.subset_groups(np.sort(train_idx)), rows.subset_groups(np.sort(valid_idx))


def source_rows(
    prepared: PreparedRetailer,
    index: int,
    *,
    candidates: CandidateConfig,
    cuts: int,
    per_cut: int | None,
    fractions: Sequence[float],
    random_state: int,
    max_negatives: int = MAX_TRAINING_NEGATIVES,
) -> LabelledRows:
    """One source's training lists: the source's own and those of its virtual small shops.

    ``index`` is the source's position in name order: customer keys (``index << 40``) and seeds
    follow it, so one-process and Dask pretraining build the same rows from the same sources. A
    customer keeps one key across the source and its virtual shops, so the held-out customers of
    early stopping are held out everywhere.
    """
    parts = [
        labelled_rows(
            prepared,
            range(cuts),
            config=candidates,
            customer_key_offset=index << SOURCE_KEY_SHIFT,
            max_customers=per_cut,
            max_negatives=max_negatives,
            random_state=random_state + index,
        )
    ]
    for j, fraction in enumerate(fractions, start=1):
        seed = random_state + 1000 * j + index
        shop, parent_rows = virtual_shop(prepared, fraction, seed=seed)
        part = labelled_rows(
            shop,
            range(cuts),
            config=candidates,
            max_customers=per_cut,
            max_negatives=max_negatives,
            random_state=seed,
        )
        part.group_customer = (index << SOURCE_KEY_SHIFT) + parent_rows[part.group_customer]
        parts.append(part)
    return LabelledRows.concat(parts)


def pretrain(
    sources: Sequence[RetailerData | str | Path],
    *,
    encoder: Encoder | None = None,
    candidates: CandidateConfig | None = None,
    max_customers_per_retailer: int | None = 8_000,
    cuts: int = 3,
    max_rounds: int = BROAD_ROUNDS,
    params: dict[str, Any] | None = None,
    random_state: int = 0,
    early_stopping_rounds: int = BROAD_EARLY_STOPPING_ROUNDS,
    virtual_shops: Sequence[float] = DEFAULT_VIRTUAL_SHOPS,
    weight_towards: RetailerData | str | Path | None = None,
    max_negatives: int = MAX_TRAINING_NEGATIVES,
) -> RecModel:
    """Train the broad ranker on several retailers' folders at once.

    Each source contributes, per customer, their last ``cuts`` items as labels, each with
    everything before it as context (more cuts: more training lists from the same customers; on
    the sample shops three cuts gave a clearly better broad model than one). Rounds are chosen by
    early stopping on 10% of the customers, held out across all sources.

    Parameters
    ----------
    sources
        Retailer folders or loaded :class:`RetailerData`.
    encoder
        The text encoder (default: the packaged all-MiniLM-L6-v2 with the on-disk cache); what
        rebuilds it is saved in the model, and its fingerprint is checked at load time.
    max_customers_per_retailer
        Training lists sampled (seeded) per source, spread over the cuts, to bound time and
        memory on big shops; each list keeps at most ``max_negatives`` unlabelled items.
        A training matrix estimated above ``sizing.MAX_ONE_PROCESS_TRAINING_BYTES`` is refused
        (``ConfigError``) before it is built: pretrain on Dask (``pretrain_on_dask``) instead.
    early_stopping_rounds
        Rounds without a better score on the held-out customers before training stops. The
        sources' validation curve can dip for tens of rounds and climb again, so the default
        waits 100 (adaptation waits 30): on the six Amazon sources that trained 187 rounds
        instead of 29, and transfer to every target gained 2-5% (``docs/BENCHMARKS.md``). Fewer
        trees are cheaper to score at every shop.
    virtual_shops
        Customer fractions in (0, 1): each source also enters as one *virtual small shop* per
        fraction, a seeded subsample of its customers whose statistics are built on the subsample
        only (:mod:`rectransfer.virtual_shops`), with its own ``max_customers_per_retailer``
        training lists. A customer keeps one key across a source and its virtual shops, so the
        early-stopping split never puts them on both sides. ``trained_on`` lists the sources.
        Default: one 10% shop per source (``DEFAULT_VIRTUAL_SHOPS``, chosen on the
        leave-one-source-out loop); ``()`` trains on the sources alone.
    weight_towards
        A retailer (folder or loaded data) to pretrain *for*: each source's training lists are
        weighted by how much of this retailer's catalogue its products resemble
        (:mod:`rectransfer.transfer.source_weights`; only the retailer's product text is read).
        The weights are recorded in ``params["source_weights"]``. Default: every source alike.
    max_negatives
        Unlabelled candidates kept (seeded sample) per training list; the rest are dropped to
        bound time and memory. Default ``MAX_TRAINING_NEGATIVES``; another value is recorded in
        ``params["max_negatives"]``. The Dask runner keeps the default.

    Examples
    --------
    >>> import rectransfer as rt
    >>> broad = rt.pretrain(
    ...     ["sample_data/sources/harbor_home", "sample_data/sources/summit_supply"],
    ...     encoder=rt.load_encoder("hashing"),  # the packaged MiniLM by default
    ...     max_rounds=10,
    ... )
    >>> broad.config.trained_on
    ['harbor_home', 'summit_supply']
    >>> path = broad.save(workdir / "broad")
    """
    if not sources:
        raise ConfigError("pretrain needs at least one source retailer folder; none was given.")
    if cuts < 1:
        raise ConfigError(f"cuts must be >= 1, got {cuts!r}.")
    for name, value in (
        ("early_stopping_rounds", early_stopping_rounds),
        ("max_negatives", max_negatives),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
    fractions = check_fractions(virtual_shops)
    encoder = encoder if encoder is not None else load_encoder()
    candidates = candidates or CandidateConfig()
    datasets = []
    for source in sources:
        if isinstance(source, RetailerData):
            datasets.append(source)
        else:
            with timed(f"loading {source}"):
                datasets.append(RetailerData.load(source))
    names = [d.name for d in datasets]
    if len(set(names)) != len(names):
        raise ConfigError(f"source retailers need distinct names, got {names!r}.")
    # In name order: seeds and row order then follow the sources, not the order they were listed
    # in, so the same sources always give the same model.
    datasets.sort(key=lambda d: d.name)
    names = sorted(names)
    # With the sources' customer counts, before anything is encoded or a row built.
    check_fits_one_process(
        [d.n_users for d in datasets],
        virtual_shops=len(fractions),
        max_customers_per_retailer=max_customers_per_retailer,
        cuts=cuts,
        max_negatives=max_negatives,
    )
    towards = None if weight_towards is None else _retailer_to_weigh_for(weight_towards, names)

    per_cut = (
        None if max_customers_per_retailer is None else max(1, max_customers_per_retailer // cuts)
    )
    parts = []
    samples = []  # a sample of each source's product vectors, for the source weights
    for i, data in enumerate(datasets):
        stage(
            f"source {i + 1}/{len(datasets)} {data.name}: {data.n_items:,} products, "
            f"{data.n_users:,} customers, {data.n_interactions:,} interactions"
        )
        prepared = prepare(data, encoder)
        if towards is not None:
            samples.append(sample_rows(prepared.catalogue.vectors, SOURCE_SAMPLE, random_state + i))
        parts.append(
            source_rows(
                prepared,
                i,
                candidates=candidates,
                cuts=cuts,
                per_cut=per_cut,
                fractions=fractions,
                random_state=random_state,
                max_negatives=max_negatives,
            )
        )
    rows = LabelledRows.concat(parts)
    n_lists = rows.positives_only().n_groups
    stage(f"training lists: {n_lists:,} from {len(datasets)} sources ({rows.rows.n_rows:,} rows)")
    if n_lists < MIN_TRAINING_LISTS:
        raise SchemaError(
            f"interactions of {names!r}: only {n_lists} training lists (a returning customer "
            f"whose next item is among the candidates); pretraining needs {MIN_TRAINING_LISTS}. "
            "Give sources with more customers who came back."
        )
    train, valid = split_by_customer(
        rows, test_size=EARLY_STOPPING_SHARE, random_state=random_state
    )
    weights = None
    if towards is not None:
        weights = _weights_towards(towards, samples, names, encoder, random_state)
    booster, rounds = train_ranker(
        train,
        valid,
        params=params or BROAD_PARAMS,
        max_rounds=max_rounds,
        random_state=random_state,
        patience=early_stopping_rounds,
        label="the broad model",
        weight=None if weights is None else row_weighting(weights),
    )
    config = broad_config(
        encoder,
        candidates,
        {
            **(params or BROAD_PARAMS),
            "cuts": cuts,
            "early_stopping_rounds": early_stopping_rounds,
            **({"virtual_shops": list(fractions)} if fractions else {}),
            **({"max_negatives": max_negatives} if max_negatives != MAX_TRAINING_NEGATIVES else {}),
            **(
                {"source_weights": dict(zip(names, weights.round(4).tolist(), strict=True))}
                if weights is not None
                else {}
            ),
        },
        rounds=rounds,
        trained_on=names,
        random_state=random_state,
    )
    return RecModel(booster, config, encoder=encoder)


def _retailer_to_weigh_for(retailer: RetailerData | str | Path, names: list[str]) -> RetailerData:
    """The ``weight_towards`` retailer, loaded and checked before any source is prepared."""
    data = retailer if isinstance(retailer, RetailerData) else RetailerData.load(retailer)
    if data.name in names:
        raise ConfigError(
            f"weight_towards: {data.name!r} is one of the sources; pretrain for a retailer the "
            "broad model does not learn from."
        )
    return data


def _weights_towards(
    data: RetailerData,
    samples: list[np.ndarray],
    names: list[str],
    encoder: Encoder,
    random_state: int,
) -> np.ndarray:
    """The sources' weights for ``data`` (:mod:`rectransfer.transfer.source_weights`)."""
    vectors = Catalogue.build(data, encoder).vectors  # product text only
    weights = weights_from_shares(neighbour_shares(vectors, samples, seed=random_state))
    shown = ", ".join(f"{n} {w:.2f}" for n, w in zip(names, weights, strict=True))
    stage(f"source weights towards {data.name}: {shown}")
    return weights


def broad_config(
    encoder: Encoder,
    candidates: CandidateConfig,
    params: dict[str, Any],
    *,
    rounds: int,
    trained_on: list[str],
    random_state: int,
) -> ModelConfig:
    """The ``config.json`` of a broad model, however it was trained (one process or Dask)."""
    return ModelConfig(
        package_version=_package_version(),
        created_at=now_iso(),
        kind="broad",
        encoder=EncoderInfo.of(encoder, encoder_spec(encoder)),
        feature_names=list(FEATURE_NAMES),
        candidates=candidates.to_dict(),
        params=params,
        rounds={"broad": rounds},
        trained_on=trained_on,
        library_versions=library_versions(),
        random_state=random_state,
    )
