"""A check of ``ranker.txt`` (LightGBM's text model format) before LightGBM parses it.

LightGBM trusts its model text: a child index out of range or a missing ``tree_sizes`` header makes
it read outside its arrays (a segmentation fault or an abort that takes the whole process down), and
a feature index past the feature count is read silently from the wrong memory. A checksum cannot
catch a file edited consistently, so :func:`check_ranker_text` parses the text itself and refuses
anything rectransfer would not have written:

* the header: ``num_class=1``, one tree per iteration, a LambdaRank objective, exactly the model's
  features (``max_feature_idx``, ``feature_names``, ``feature_infos``) and ``tree_sizes``, one per
  tree and equal to each tree's length in bytes (LightGBM seeks by these sizes);
* every tree: ``Tree=<i>`` in order, known fields only, each once, arrays of the length
  ``num_leaves`` implies, numbers written as finite decimals (a threshold may be ``inf``, as
  LightGBM writes for a split that only separates missing values; never NaN), feature indices
  below the feature count, no categorical or linear parts (rectransfer trains neither), and
  children forming one tree: every internal node ``1..num_leaves-2`` and every leaf (written as
  ``~leaf``, i.e. ``-1..-num_leaves``) is the child of exactly one node, an internal child after
  its parent;
* the trailer: ``end of trees``, feature importances, the parameters block and
  ``pandas_categorical:null``, nothing else.

A consistent but malicious file is still out of reach of any check (it can hold any trees); what is
promised is that no file makes the process die or read outside the model.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from pathlib import Path

from rectransfer.errors import IncompatibleArtifactError

__all__ = ["MAX_LEAVES", "MAX_TREES", "check_ranker_text"]

MAX_TREES = 100_000  # far above what training makes (hundreds); bounds the memory a file can ask
MAX_LEAVES = 131_072  # LightGBM's own upper bound for num_leaves

_INT = re.compile(r"-?\d{1,12}")
# What LightGBM writes for a double (0.25856596231460577, -3.81188e-05, 1.0000000180025095e-35);
# "nan", "inf" and anything else LightGBM's own number reader might half-read are refused.
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?")
_IMPORTANCE = re.compile(r"[A-Za-z0-9_]+=\d{1,20}")
_PARAMETER = re.compile(r"\[[A-Za-z0-9_]+: [^\]\n]*\]")

_HEADER_KEYS = frozenset(
    {
        "version",
        "num_class",
        "num_tree_per_iteration",
        "label_index",
        "max_feature_idx",
        "objective",
        "feature_names",
        "feature_infos",
        "tree_sizes",
    }
)
_OBJECTIVES = frozenset({"lambdarank"})  # what rectransfer's rankers are trained with
_TREE_KEYS = frozenset(
    {
        "num_leaves",
        "num_cat",
        "split_feature",
        "split_gain",
        "threshold",
        "decision_type",
        "left_child",
        "right_child",
        "leaf_value",
        "leaf_weight",
        "leaf_count",
        "internal_value",
        "internal_weight",
        "internal_count",
        "is_linear",
        "shrinkage",
    }
)
_TRAILER_MARKS = frozenset({"feature_importances:", "parameters:", "end of parameters"})


class _Refused(Exception):
    """One problem, worded for the error message; :func:`check_ranker_text` adds the place."""


def _ints(value: str, count: int) -> list[int]:
    tokens = value.split(" ") if value else []
    if len(tokens) != count:
        raise _Refused(f"has {len(tokens)} values, {count} expected")
    for token in tokens:
        if not _INT.fullmatch(token):
            raise _Refused(f"value {token[:40]!r} is not an integer")
    return [int(token) for token in tokens]


def _floats(value: str, count: int, *, infinite: bool = False) -> list[float]:
    """``count`` finite decimals (``infinite``: ``inf`` / ``-inf`` too, never NaN)."""
    tokens = value.split(" ") if value else []
    if len(tokens) != count:
        raise _Refused(f"has {len(tokens)} values, {count} expected")
    numbers = []
    for token in tokens:
        if _FLOAT.fullmatch(token) or (infinite and token in ("inf", "-inf")):
            number = float(token)
        else:
            number = math.nan
        if math.isnan(number) or (math.isinf(number) and not infinite):
            raise _Refused(f"value {token[:40]!r} is not a finite number")
        numbers.append(number)
    return numbers


def _one_int(value: str, low: int, high: int) -> int:
    (number,) = _ints(value, 1)
    if not low <= number <= high:
        raise _Refused(f"{number} is outside {low}..{high}")
    return number


def _key_values(lines: Sequence[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep:
            raise _Refused(f"line {line[:60]!r} is not key=value")
        if key in fields:
            raise _Refused(f"field {key!r} appears twice")
        fields[key] = value
    return fields


def _check_header(fields: dict[str, str], feature_names: Sequence[str]) -> list[int]:
    """The header's fields; returns ``tree_sizes``."""
    unknown = sorted(set(fields) - _HEADER_KEYS)
    if unknown:
        raise _Refused(f"unknown header fields {unknown!r}")
    for key in ("num_class", "num_tree_per_iteration", "max_feature_idx", "objective"):
        if key not in fields:
            raise _Refused(f"field {key!r} is missing")
    if "tree_sizes" not in fields:
        # LightGBM then parses the trees without bounds and can crash on a damaged one.
        raise _Refused("field 'tree_sizes' is missing")
    bounds = {
        "num_class": (1, 1),
        "num_tree_per_iteration": (1, 1),
        "label_index": (0, 1_000_000),
        "max_feature_idx": (len(feature_names) - 1, len(feature_names) - 1),
    }
    for key, (low, high) in bounds.items():
        if key in fields:
            try:
                _one_int(fields[key], low, high)
            except _Refused as err:
                raise _Refused(f"field {key!r}: {err}") from None
    objective = fields["objective"].split(" ")[0]
    if objective not in _OBJECTIVES:
        raise _Refused(f"field 'objective': {objective[:40]!r} is not one of {sorted(_OBJECTIVES)}")
    names = fields.get("feature_names", "").split(" ")
    if names != list(feature_names):
        raise _Refused(
            f"feature_names {names[:40]!r} are not config.json's {list(feature_names)!r}"
        )
    if len(fields.get("feature_infos", "").split(" ")) != len(feature_names):
        raise _Refused(f"field 'feature_infos' does not have {len(feature_names)} entries")
    sizes = fields["tree_sizes"].split(" ") if fields["tree_sizes"] else []
    if len(sizes) > MAX_TREES:
        raise _Refused(f"field 'tree_sizes' lists {len(sizes)} trees, more than {MAX_TREES}")
    try:
        return _ints(fields["tree_sizes"], len(sizes))
    except _Refused as err:
        raise _Refused(f"field 'tree_sizes': {err}") from None


def _check_children(left: list[int], right: list[int], num_leaves: int) -> None:
    """Children form one tree: each internal node but the root and each leaf is reached once."""
    internal = num_leaves - 1
    parent_of_node = [-1] * internal
    parent_of_leaf = [-1] * num_leaves
    for field, children in (("left_child", left), ("right_child", right)):
        for node, child in enumerate(children):
            if child >= 0:
                # LightGBM numbers a split's node after its parent's, so an internal child has a
                # larger index; this also rules out cycles.
                if not node < child < internal:
                    raise _Refused(
                        f"{field}[{node}] = {child}: an internal child must be in "
                        f"{node + 1}..{internal - 1}"
                    )
                if parent_of_node[child] >= 0:
                    raise _Refused(f"{field}[{node}] = {child}: node {child} has two parents")
                parent_of_node[child] = node
            else:
                leaf = ~child
                if leaf >= num_leaves:
                    raise _Refused(
                        f"{field}[{node}] = {child}: a leaf must be in -1..-{num_leaves} "
                        f"(num_leaves={num_leaves})"
                    )
                if parent_of_leaf[leaf] >= 0:
                    raise _Refused(f"{field}[{node}] = {child}: leaf {leaf} has two parents")
                parent_of_leaf[leaf] = node
    # Every node below the root and every leaf got exactly one parent (counts match the slots).


def _check_tree(lines: Sequence[str], n_features: int) -> None:
    fields = _key_values(lines)
    unknown = sorted(set(fields) - _TREE_KEYS)
    if unknown:
        raise _Refused(f"unknown fields {unknown!r} (categorical or linear trees are not used)")
    if "num_leaves" not in fields or "leaf_value" not in fields:
        raise _Refused("field 'num_leaves' or 'leaf_value' is missing")
    current = "num_leaves"
    try:
        num_leaves = _one_int(fields["num_leaves"], 1, MAX_LEAVES)
        current = "num_cat"
        _one_int(fields.get("num_cat", "0"), 0, 0)  # categorical splits: rectransfer has none
        current = "is_linear"
        _one_int(fields.get("is_linear", "0"), 0, 0)
        current = "shrinkage"
        _floats(fields.get("shrinkage", "1"), 1)
        current = "leaf_value"
        _floats(fields["leaf_value"], num_leaves)
        current = "leaf_weight"
        if current in fields:
            _floats(fields[current], num_leaves)
        current = "leaf_count"
        if current in fields:
            _ints(fields[current], num_leaves)
        internal = num_leaves - 1
        if internal == 0:
            return  # a single leaf: LightGBM reads nothing else
        for current in ("split_feature", "threshold", "left_child", "right_child"):
            if current not in fields:
                raise _Refused("is missing")
        current = "split_feature"
        for node, feature in enumerate(_ints(fields[current], internal)):
            if not 0 <= feature < n_features:
                raise _Refused(
                    f"[{node}] = {feature}: a feature index must be in 0..{n_features - 1} "
                    f"(config.json lists {n_features} features)"
                )
        current = "threshold"
        # LightGBM itself writes "inf" for a split that only sends missing values one way.
        _floats(fields[current], internal, infinite=True)
        current = "decision_type"
        for node, kind in enumerate(
            _ints(fields.get(current, " ".join(["0"] * internal)), internal)
        ):
            # bit 0: categorical (not used); bit 1: default left; bits 2-3: missing type 0..2
            if not 0 <= kind < 16 or kind & 1 or (kind >> 2) == 3:
                raise _Refused(f"[{node}] = {kind} is not a numerical split")
        for current in ("split_gain", "internal_value", "internal_weight"):
            if current in fields:
                _floats(fields[current], internal)
        current = "internal_count"
        if current in fields:
            _ints(fields[current], internal)
        current = "left_child, right_child"
        _check_children(
            _ints(fields["left_child"], internal),
            _ints(fields["right_child"], internal),
            num_leaves,
        )
    except _Refused as err:
        raise _Refused(f"field {current!r}: {err}") from None


def check_ranker_text(text: str, feature_names: Sequence[str], *, source: str | Path) -> int:
    """Check LightGBM model text before LightGBM parses it; returns the number of trees.

    Parameters
    ----------
    text
        The contents of ``ranker.txt``.
    feature_names
        The features the model's ``config.json`` lists, in order.
    source
        The file, for error messages.

    Raises
    ------
    IncompatibleArtifactError
        Naming the file, the tree (where there is one) and the field, for anything rectransfer
        would not have written (see the module docstring).

    Examples
    --------
    >>> path = folder / "ranker.txt"  # doctest: +SKIP
    >>> check_ranker_text(path.read_text(), config.feature_names, source=path)  # doctest: +SKIP
    162
    """
    where = "header"
    try:
        if not text.isascii():
            raise _Refused("holds non-ASCII characters")
        lines = text.split("\n")
        if lines[0] != "tree":
            raise _Refused(f"starts with {lines[0][:40]!r}, not 'tree'")
        starts = [0]  # character (= byte, the text being ASCII) offset of every line
        for line in lines[:-1]:
            starts.append(starts[-1] + len(line) + 1)
        tree_lines = [i for i, line in enumerate(lines) if line.startswith("Tree=")]
        ends = [i for i, line in enumerate(lines) if line == "end of trees"]
        if len(ends) != 1 or (tree_lines and tree_lines[-1] > ends[0]):
            raise _Refused("there is not exactly one 'end of trees' line after the trees")
        first = tree_lines[0] if tree_lines else ends[0]
        sizes = _check_header(_key_values([s for s in lines[1:first] if s]), feature_names)
        if not tree_lines:
            raise _Refused("the model has no trees")
        if len(sizes) != len(tree_lines):
            raise _Refused(
                f"tree_sizes lists {len(sizes)} trees but the file has {len(tree_lines)}"
            )
        bounds = [*tree_lines, ends[0]]
        for index, (begin, end) in enumerate(itertools.pairwise(bounds)):
            where = f"tree {index}"
            if lines[begin] != f"Tree={index}":
                raise _Refused(f"starts with {lines[begin][:40]!r}, not 'Tree={index}'")
            if sizes[index] != starts[end] - starts[begin]:
                raise _Refused(
                    f"field 'tree_sizes': {sizes[index]} bytes, but the tree has "
                    f"{starts[end] - starts[begin]}"
                )
            body = lines[begin + 1 : end]
            blank = body.index("") if "" in body else len(body)
            if any(body[blank:]):
                raise _Refused("has lines after its blank line")
            _check_tree(body[:blank], len(feature_names))
        where = "trailer"
        tail = [line for line in lines[ends[0] + 1 :] if line]
        if not tail or tail[-1] != "pandas_categorical:null":
            raise _Refused("does not end with 'pandas_categorical:null'")
        for line in tail[:-1]:
            if not (
                line in _TRAILER_MARKS or _IMPORTANCE.fullmatch(line) or _PARAMETER.fullmatch(line)
            ):
                raise _Refused(f"unexpected line {line[:60]!r}")
    except _Refused as err:
        raise IncompatibleArtifactError(
            f"{source}: not a LightGBM model as rectransfer writes it: {where}: {err}. The file is "
            "damaged or was not written by rectransfer; restore it or save the model again."
        ) from None
    return len(tree_lines)
