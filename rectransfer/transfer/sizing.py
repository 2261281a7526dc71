"""How big the broad model's training matrix gets, and whether one process may build it.

One-process pretraining holds every source's sampled training rows in one float32 matrix (and
LightGBM's binned copy and the train / early-stopping split beside it). The matrix is estimated
before anything is built, from the number of sources, their customers and the caps, so a run that
cannot fit is refused at once with the way out (the Dask runner), not after an hour of encoding.
"""

from __future__ import annotations

from collections.abc import Sequence

from rectransfer.errors import ConfigError
from rectransfer.ranking.features import FEATURE_NAMES

BYTES_PER_VALUE = 4  # float32 features
# The largest training matrix one process builds: about 16 sources at the default 8,000 customers
# each (~95 MB each). The process peaks at about five times the matrix (every source's tables and
# prepared data stay loaded, and the train / early-stopping split and LightGBM's bins copy the
# rows): 2.87 GB for 6 generated sources, 5.29 GB for 12 (docs/SCALING.md). So this keeps
# one-process pretraining near 8 GB; past it the Dask runner spreads the sources over workers.
MAX_ONE_PROCESS_TRAINING_BYTES = 1_500_000_000


def training_lists_bound(
    n_customers: int | None, *, max_customers_per_retailer: int | None, cuts: int
) -> int | None:
    """At most how many training lists one source gives (``None``: unbounded, nothing known).

    Each of the ``cuts`` cuts samples at most ``max_customers_per_retailer // cuts`` customers
    (at least one), and never more than the source has.

    Examples
    --------
    >>> training_lists_bound(100_000, max_customers_per_retailer=8_000, cuts=3)
    7998
    >>> training_lists_bound(500, max_customers_per_retailer=8_000, cuts=3)
    1500
    """
    per_cut = (
        None if max_customers_per_retailer is None else max(1, max_customers_per_retailer // cuts)
    )
    if per_cut is None and n_customers is None:
        return None
    if per_cut is None:
        return cuts * int(n_customers)  # type: ignore[arg-type]
    if n_customers is None:
        return cuts * per_cut
    return cuts * min(int(n_customers), per_cut)


def training_matrix_bytes(
    customers_per_source: Sequence[int | None],
    *,
    max_customers_per_retailer: int | None,
    cuts: int,
    max_negatives: int,
) -> int | None:
    """An upper bound on the training matrix's bytes: lists x (label + ``max_negatives``) rows x
    features x 4; ``None`` when a source's customers are unknown and uncapped.

    Examples
    --------
    >>> mb = training_matrix_bytes(
    ...     [None] * 6, max_customers_per_retailer=8_000, cuts=3, max_negatives=100
    ... ) / 1e6
    >>> round(mb)  # 6 sources x 7,998 lists x 101 rows x 29 features x 4 bytes
    562
    """
    total = 0
    for n_customers in customers_per_source:
        lists = training_lists_bound(
            n_customers, max_customers_per_retailer=max_customers_per_retailer, cuts=cuts
        )
        if lists is None:
            return None
        total += lists * (1 + max_negatives) * len(FEATURE_NAMES) * BYTES_PER_VALUE
    return total


def check_fits_one_process(
    customers_per_source: Sequence[int | None],
    *,
    max_customers_per_retailer: int | None,
    cuts: int,
    max_negatives: int,
    limit: int | None = None,
    virtual_shops: int = 0,
) -> int | None:
    """Refuse one-process pretraining whose training matrix would pass ``limit`` bytes
    (default :data:`MAX_ONE_PROCESS_TRAINING_BYTES`); return the estimate.

    Raises
    ------
    ConfigError
        Naming the estimate, the limit and the two ways out: the Dask runner, or a lower
        ``max_customers_per_retailer``.

    Examples
    --------
    >>> check_fits_one_process(
    ...     [None] * 100, max_customers_per_retailer=8_000, cuts=3, max_negatives=100
    ... )  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rectransfer.errors.ConfigError: the training matrix of 100 sources would take up to 9.37 GB ...
    """
    limit = MAX_ONE_PROCESS_TRAINING_BYTES if limit is None else limit
    # each virtual shop of a source adds up to the same number of training lists again
    estimate = training_matrix_bytes(
        list(customers_per_source) * (1 + virtual_shops),
        max_customers_per_retailer=max_customers_per_retailer,
        cuts=cuts,
        max_negatives=max_negatives,
    )
    if estimate is not None and estimate > limit:
        raise ConfigError(
            f"the training matrix of {len(customers_per_source)} sources would take up to "
            f"{estimate / 1e9:.2f} GB (max_customers_per_retailer={max_customers_per_retailer!r}, "
            f"cuts={cuts}, {max_negatives} negatives per list), more than the {limit / 1e9:.2f} "
            "GB one process builds. Pretrain on a Dask cluster instead (the pretrain flow with "
            "runner='dask', or rectransfer.transfer.distributed.pretrain_on_dask), or lower "
            "max_customers_per_retailer."
        )
    return estimate
