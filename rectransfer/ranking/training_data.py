"""Labelled candidate rows for training and validating rankers, without leakage.

A *cut* ``c`` plays back time for every customer: the item ``c`` places before the end of their
sequence is the label, everything before it is the context, and the retailer's behaviour statistics
are rebuilt from all customers' contexts at that cut, so no feature can see the label. Several cuts
give a small shop more training groups; the cuts used for training always lie before the ones used
for validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rectransfer.prepared.prepare import PreparedRetailer
from rectransfer.prepared.stats import BehaviourStats
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import CandidateRows, Queries, candidate_rows


@dataclass
class LabelledRows:
    """Candidate rows with labels; ``group`` numbers each (retailer, cut, customer) list."""

    rows: CandidateRows
    group: np.ndarray  # int64 (rows,), contiguous runs
    group_customer: np.ndarray  # int64 (groups,), a customer key (same customer -> same key)
    n_queries: int  # customers asked (including those whose label is not among the candidates)

    @property
    def n_groups(self) -> int:
        return len(self.group_customer)

    def group_sizes(self) -> np.ndarray:
        """Rows per group in row order (LightGBM's ``group``); groups with no rows are left out."""
        if len(self.group) == 0:
            return np.zeros(0, dtype=np.int64)
        starts = np.flatnonzero(np.r_[True, self.group[1:] != self.group[:-1]])
        return np.diff(np.r_[starts, len(self.group)])

    def positives_only(self) -> LabelledRows:
        """Only the groups that contain their label (LambdaRank learns nothing from the others)."""
        has_positive = np.zeros(self.n_groups, dtype=bool)
        has_positive[self.group[self.rows.label == 1]] = True
        return self.subset_groups(np.flatnonzero(has_positive))

    def subset_groups(self, groups: np.ndarray) -> LabelledRows:
        keep_group = np.zeros(self.n_groups, dtype=bool)
        keep_group[groups] = True
        keep = keep_group[self.group]
        renumber = np.cumsum(keep_group) - 1
        rows = CandidateRows(
            query=self.rows.query[keep],
            item=self.rows.item[keep],
            features=self.rows.features[keep],
            label=self.rows.label[keep],
        )
        return LabelledRows(rows, renumber[self.group[keep]], self.group_customer[keep_group], 0)

    @classmethod
    def concat(cls, parts: list[LabelledRows]) -> LabelledRows:
        offset = 0
        groups, customers = [], []
        for part in parts:
            groups.append(part.group + offset)
            customers.append(part.group_customer)
            offset += part.n_groups
        return cls(
            CandidateRows.concat([p.rows for p in parts]),
            np.concatenate(groups) if groups else np.zeros(0, np.int64),
            np.concatenate(customers) if customers else np.zeros(0, np.int64),
            sum(p.n_queries for p in parts),
        )


@dataclass(frozen=True)
class CutQueries:
    """The queries of one cut, with the statistics built from its contexts."""

    queries: Queries
    stats: BehaviourStats
    rows: np.ndarray  # customer rows that have both a context and a label


def cut_queries(prepared: PreparedRetailer, cut: int) -> CutQueries:
    """Context = everything before the item ``cut`` places from the end; that item = label."""
    histories = prepared.index.histories
    context = histories.truncate(cut + 1)
    targets = histories.last(cut)
    rows = np.flatnonzero((context.lengths > 0) & (targets >= 0))
    queries = Queries(context=context, text_vectors=prepared.user_vectors, targets=targets)
    return CutQueries(queries=queries, stats=BehaviourStats.build(context), rows=rows)


def labelled_rows(
    prepared: PreparedRetailer,
    cuts: range,
    *,
    config: CandidateConfig,
    customer_key_offset: int = 0,
    max_customers: int | None = None,
    max_negatives: int | None = None,
    random_state: int = 0,
) -> LabelledRows:
    """Labelled candidate rows of ``prepared`` for every cut in ``cuts``.

    ``max_customers`` samples that many customers (seeded) per cut and ``max_negatives`` that many
    unlabelled candidates per list, to bound the cost on big shops. Customer keys are
    ``customer_key_offset + customer row`` so that callers can split by customer across retailers.
    """
    parts = []
    rng = np.random.default_rng(random_state)
    for cut in cuts:
        cq = cut_queries(prepared, cut)
        rows = cq.rows
        if max_customers is not None and len(rows) > max_customers:
            rows = np.sort(rng.choice(rows, size=max_customers, replace=False))
        if len(rows) == 0:
            continue
        sub_queries = Queries(
            context=cq.queries.context.select(rows),
            text_vectors=cq.queries.text_vectors[rows],
            targets=None if cq.queries.targets is None else cq.queries.targets[rows],
        )
        candidates = candidate_rows(prepared.catalogue, cq.stats, sub_queries, config=config)
        if max_negatives is not None:
            candidates = _sample_negatives(candidates, max_negatives, rng)
        parts.append(
            LabelledRows(
                rows=candidates,
                group=candidates.query.copy(),
                group_customer=customer_key_offset + rows.astype(np.int64),
                n_queries=len(rows),
            )
        )
    return LabelledRows.concat(parts)


def _sample_negatives(
    rows: CandidateRows, max_negatives: int, rng: np.random.Generator
) -> CandidateRows:
    """Keep every labelled row and at most ``max_negatives`` random others per customer."""
    key = rng.random(rows.n_rows)
    key[rows.label == 1] = -1.0  # labelled rows sort first and are always kept
    order = np.lexsort((key, rows.query))
    sorted_query = rows.query[order]
    starts = np.flatnonzero(np.r_[True, sorted_query[1:] != sorted_query[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    positives = np.bincount(rows.query[rows.label == 1], minlength=int(rows.query.max()) + 1)
    allowed = max_negatives + positives[sorted_query]
    keep = np.sort(order[position < allowed])
    return CandidateRows(
        query=rows.query[keep],
        item=rows.item[keep],
        features=rows.features[keep],
        label=rows.label[keep],
    )
