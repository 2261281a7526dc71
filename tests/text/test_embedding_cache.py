"""The on-disk embedding cache: round trips, atomic shards, corrupt files, compaction."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rectransfer.errors import ConfigError, IncompatibleArtifactError
from rectransfer.text.embedding_cache import EmbeddingCache

FP = "f" * 64
SHARD_NAME = re.compile(r"^shard-\d+-[0-9a-f]{32}\.npz$")


def keys_of(*texts: str) -> list[bytes]:
    return [EmbeddingCache.key(t) for t in texts]


def vectors(n: int, dim: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def shards(directory: Path, fingerprint: str = FP) -> list[Path]:
    folder = directory / "embeddings" / fingerprint
    return sorted(p for p in folder.iterdir() if SHARD_NAME.match(p.name))


def test_key_is_the_sha256_digest_of_the_utf8_text():
    assert EmbeddingCache.key("Zelt für 2") == hashlib.sha256("Zelt für 2".encode()).digest()
    assert len(EmbeddingCache.key("")) == 32


def test_nothing_stored_gives_an_empty_dimension(tmp_path):
    found, vecs = EmbeddingCache(tmp_path).get_many(FP, keys_of("a", "b"))
    assert found.tolist() == [False, False]
    assert vecs.shape == (2, 0)
    assert vecs.dtype == np.float32
    assert not (tmp_path / "embeddings").exists()  # reading creates nothing


def test_round_trip_in_memory_and_from_disk(tmp_path):
    data = vectors(3)
    EmbeddingCache(tmp_path).put_many(FP, keys_of("a", "b", "c"), data)
    for cache in (EmbeddingCache(tmp_path), EmbeddingCache(str(tmp_path))):
        found, got = cache.get_many(FP, keys_of("c", "x", "a"))
        assert found.tolist() == [True, False, True]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.stack([data[2], np.zeros(4), data[0]]))


def test_shard_layout_and_dtypes(tmp_path):
    EmbeddingCache(tmp_path).put_many(FP, keys_of("a", "b"), vectors(2).astype(np.float64))
    (shard,) = shards(tmp_path)
    with np.load(shard, allow_pickle=False) as npz:
        assert npz["keys"].dtype == np.dtype("S32")
        assert npz["vectors"].dtype == np.float32
        assert npz["vectors"].shape == (2, 4)


def test_keys_ending_in_nul_bytes_survive_the_disk(tmp_path):
    # numpy strips trailing NULs from S32 items; the cache must keep all 32 bytes.
    key = b"\x01" * 30 + b"\x00\x00"
    EmbeddingCache(tmp_path).put_many(FP, [key], vectors(1))
    found, _ = EmbeddingCache(tmp_path).get_many(FP, [key, key[:31] + b"\x01"])
    assert found.tolist() == [True, False]


def test_duplicate_keys_in_one_call(tmp_path):
    cache = EmbeddingCache(tmp_path)
    data = vectors(3)
    cache.put_many(FP, keys_of("a", "a", "b"), data)  # first vector of a key wins
    (shard,) = shards(tmp_path)
    with np.load(shard, allow_pickle=False) as npz:
        assert len(npz["keys"]) == 2
    found, got = EmbeddingCache(tmp_path).get_many(FP, keys_of("b", "a", "b", "a"))
    assert found.all()
    np.testing.assert_array_equal(got, data[[2, 0, 2, 0]])


def test_putting_only_known_keys_writes_nothing(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(FP, keys_of("a"), vectors(1))
    cache.put_many(FP, keys_of("a", "a"), vectors(2, seed=1))
    assert len(shards(tmp_path)) == 1
    np.testing.assert_array_equal(cache.get_many(FP, keys_of("a"))[1], vectors(1))


def test_fingerprints_never_share_entries(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many("aaaa", keys_of("tent"), vectors(1, dim=4))
    cache.put_many("bbbb", keys_of("stove"), vectors(1, dim=8))
    assert cache.get_many("aaaa", keys_of("stove"))[0].tolist() == [False]
    assert cache.get_many("bbbb", keys_of("tent"))[0].tolist() == [False]
    assert cache.get_many("bbbb", keys_of("stove"))[1].shape == (1, 8)


def test_another_dimension_under_the_same_fingerprint_is_refused(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(FP, keys_of("a"), vectors(1, dim=4))
    with pytest.raises(IncompatibleArtifactError, match="4-d"):
        cache.put_many(FP, keys_of("b"), vectors(1, dim=5))


def test_repeated_lookups_use_the_in_memory_index(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(FP, keys_of("a"), vectors(1))
    assert cache.get_many(FP, keys_of("a"))[0].all()
    for shard in shards(tmp_path):
        shard.unlink()
    assert cache.get_many(FP, keys_of("a"))[0].all()


def test_a_miss_picks_up_shards_written_by_another_process(tmp_path):
    reader, writer = EmbeddingCache(tmp_path), EmbeddingCache(tmp_path)
    assert not reader.get_many(FP, keys_of("a"))[0].any()
    writer.put_many(FP, keys_of("a"), vectors(1))
    assert reader.get_many(FP, keys_of("a"))[0].all()


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"not a zip file at all", id="garbage"),
        pytest.param("truncated", id="truncated"),
        pytest.param({"keys": "S32", "vectors": np.float64}, id="float64-vectors"),
        pytest.param({"keys": "U32", "vectors": np.float32}, id="unicode-keys"),
        pytest.param({"keys": "S32", "vectors": np.float32, "rows": 3}, id="row-mismatch"),
        pytest.param({"keys": "S32", "vectors": np.float32, "dim": 5}, id="other-dimension"),
        pytest.param("pickle", id="object-array"),
    ],
)
def test_bad_shards_are_moved_aside_with_a_warning(tmp_path, content):
    good = vectors(2)
    EmbeddingCache(tmp_path).put_many(FP, keys_of("a", "b"), good)
    (good_shard,) = shards(tmp_path)
    bad = good_shard.parent / f"shard-9-{'0' * 32}.npz"
    if isinstance(content, bytes):
        bad.write_bytes(content)
    elif content == "truncated":
        bad.write_bytes(good_shard.read_bytes()[:-40])
    elif content == "pickle":
        with open(bad, "wb") as handle:
            np.savez(handle, keys=np.array([object()], dtype=object), vectors=good[:1])
    else:
        rows = content.get("rows", 1)
        key_array = np.array([b"c" * 32], dtype=content["keys"])
        data = np.ones((rows, content.get("dim", 4)), dtype=content["vectors"])
        with open(bad, "wb") as handle:
            np.savez(handle, keys=key_array, vectors=data)
    cache = EmbeddingCache(tmp_path)
    with pytest.warns(RuntimeWarning, match=f"{bad.name} is not usable .*moved aside") as caught:
        found, got = cache.get_many(FP, keys_of("a", "b"), dim=4)
    assert found.all()
    np.testing.assert_array_equal(got, good)
    assert not bad.exists()
    (aside,) = bad.parent.glob(f"{bad.name}.bad-*")  # kept for a look, out of the loader's way
    assert aside.name in str(caught[0].message)
    assert shards(tmp_path) == [good_shard]


def test_temporary_files_are_ignored_and_stale_ones_removed(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(FP, keys_of("a"), vectors(1))
    folder = tmp_path / "embeddings" / FP
    stale = folder / ".tmp-0123456789abcdef"
    fresh = folder / ".tmp-fedcba9876543210"
    stale.write_bytes(b"half a shard from a killed writer")
    fresh.write_bytes(b"a shard another process is writing now")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    found, _ = EmbeddingCache(tmp_path).get_many(FP, keys_of("a"))  # no warning
    assert found.all()
    assert not stale.exists()
    assert fresh.exists()


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(FP, keys_of("a"), vectors(1))

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.put_many(FP, keys_of("b"), vectors(1))
    assert sorted(p.name for p in (tmp_path / "embeddings" / FP).iterdir()) == [
        p.name for p in shards(tmp_path)
    ]
    assert len(shards(tmp_path)) == 1


def test_compaction_keeps_every_entry(tmp_path):
    cache = EmbeddingCache(tmp_path, max_shards=3)
    data = vectors(10)
    texts = [f"text {i}" for i in range(10)]
    for i in range(10):
        cache.put_many(FP, keys_of(texts[i]), data[i : i + 1])
        assert len(shards(tmp_path)) <= 3
    found, got = EmbeddingCache(tmp_path).get_many(FP, keys_of(*texts))
    assert found.all()
    np.testing.assert_array_equal(got, data)
    assert not [p for p in (tmp_path / "embeddings" / FP).iterdir() if p.name.startswith(".")]


def test_too_many_shards_on_disk_are_compacted_on_load(tmp_path):
    writer = EmbeddingCache(tmp_path, max_shards=100)
    for i in range(6):
        writer.put_many(FP, keys_of(f"t{i}"), vectors(1, seed=i))
    assert len(shards(tmp_path)) == 6
    found, _ = EmbeddingCache(tmp_path, max_shards=4).get_many(FP, keys_of("t0", "t5"))
    assert found.all()
    assert len(shards(tmp_path)) == 1


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.get_many("../escape", keys_of("a")), "fingerprint"),
        (lambda c: c.get_many(FP, [b"short"]), "32-byte"),
        (lambda c: c.get_many(FP, b"x" * 32), "single key"),
        (lambda c: c.put_many(FP, keys_of("a"), np.ones(4)), "shape"),
        (lambda c: c.put_many(FP, keys_of("a", "b"), np.ones((1, 4))), "shape"),
        (lambda c: c.put_many(FP, keys_of("a"), np.full((1, 4), np.nan)), "NaN"),
    ],
)
def test_bad_arguments_raise_config_errors(tmp_path, call, message):
    with pytest.raises(ConfigError, match=message):
        call(EmbeddingCache(tmp_path))


def test_max_shards_must_be_positive(tmp_path):
    with pytest.raises(ConfigError, match="max_shards"):
        EmbeddingCache(tmp_path, max_shards=0)


def test_pickles_without_its_in_memory_index(tmp_path):
    cache = EmbeddingCache(tmp_path, max_shards=5)
    cache.put_many(FP, keys_of("a"), vectors(1))
    clone = pickle.loads(pickle.dumps(cache))
    assert clone.max_shards == 5
    assert clone.get_many(FP, keys_of("a"))[0].all()


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.lists(st.integers(0, 15), max_size=6), max_size=6))
def test_every_stored_key_is_found_with_its_first_vector(tmp_path_factory, batches):
    directory = tmp_path_factory.mktemp("prop")
    cache = EmbeddingCache(directory, max_shards=2)
    expected: dict[int, np.ndarray] = {}
    for b, batch in enumerate(batches):
        data = vectors(len(batch), seed=b)
        cache.put_many(FP, keys_of(*map(str, batch)), data)
        for value, row in zip(batch, data, strict=True):
            expected.setdefault(value, row)
    probe = list(range(16))
    found, got = EmbeddingCache(directory).get_many(FP, keys_of(*map(str, probe)))
    assert found.tolist() == [v in expected for v in probe]
    for v in expected:
        np.testing.assert_array_equal(got[v], expected[v])


# --- a planted or broken cache never costs good shards, nor the run (issue 16) ---


def _plant(folder: Path, name: str, dim: int, rows: int = 1) -> Path:
    path = folder / name
    with open(path, "wb") as handle:
        np.savez(
            handle,
            keys=np.frombuffer(b"z" * 32 * rows, dtype="S32"),
            vectors=np.ones((rows, dim), dtype=np.float32),
        )
    return path


def test_a_planted_shard_of_another_dimension_costs_no_good_shard(tmp_path):
    good = vectors(3, dim=4)
    for i, text in enumerate("abc"):  # three good shards of 4-d vectors
        EmbeddingCache(tmp_path).put_many(FP, keys_of(text), good[i : i + 1])
    good_shards = shards(tmp_path)
    folder = good_shards[0].parent
    # Numbered first, so it is read first: it used to set the length and sink every good shard.
    planted = _plant(folder, f"shard-0-{'0' * 32}.npz", dim=7, rows=5)
    cache = EmbeddingCache(tmp_path)
    with pytest.warns(RuntimeWarning, match=f"{planted.name} is not usable \\(7-d vectors"):
        found, got = cache.get_many(FP, keys_of("a", "b", "c"), dim=4)
    assert found.all()
    np.testing.assert_array_equal(got, good)
    assert shards(tmp_path) == good_shards  # every good shard is still there
    assert len(list(folder.glob(f"{planted.name}.bad-*"))) == 1
    cache.put_many(FP, keys_of("d"), vectors(1, dim=4))  # and the cache keeps working


def test_without_a_dimension_one_planted_shard_does_not_outvote_the_rest(tmp_path):
    good = vectors(2, dim=4)
    EmbeddingCache(tmp_path).put_many(FP, keys_of("a", "b"), good)
    (good_shard,) = shards(tmp_path)
    planted = _plant(good_shard.parent, f"shard-0-{'0' * 32}.npz", dim=7, rows=1)
    # No length known: the majority's is served, and the other shard is left where it is until
    # an encoder says which length is right.
    found, got = EmbeddingCache(tmp_path).get_many(FP, keys_of("a", "b"))
    assert found.all()
    np.testing.assert_array_equal(got, good)
    assert good_shard.exists() and planted.exists()


def test_a_folder_with_a_shard_name_is_moved_aside_not_a_crash(tmp_path):
    EmbeddingCache(tmp_path).put_many(FP, keys_of("a"), vectors(1))
    (good_shard,) = shards(tmp_path)
    squatter = good_shard.parent / f"shard-5-{'1' * 32}.npz"
    squatter.mkdir()
    (squatter / "inside.txt").write_text("not ours")
    with pytest.warns(RuntimeWarning, match=f"{squatter.name} is not usable"):
        found, _ = EmbeddingCache(tmp_path).get_many(FP, keys_of("a"), dim=4)
    assert found.all()
    (aside,) = good_shard.parent.glob(f"{squatter.name}.bad-*")
    assert (aside / "inside.txt").read_text() == "not ours"  # moved, never deleted


def test_a_bad_shard_that_cannot_be_moved_is_skipped_and_reported_once(tmp_path, monkeypatch):
    EmbeddingCache(tmp_path).put_many(FP, keys_of("a"), vectors(1))
    (good_shard,) = shards(tmp_path)
    bad = good_shard.parent / f"shard-5-{'1' * 32}.npz"
    bad.write_bytes(b"garbage")

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "rename", read_only)
    cache = EmbeddingCache(tmp_path)
    with pytest.warns(RuntimeWarning, match="could not be moved aside .*skipped"):
        found, _ = cache.get_many(FP, keys_of("a"), dim=4)
    assert found.all() and bad.exists() and good_shard.exists()
    found, _ = cache.get_many(FP, keys_of("missing"), dim=4)  # a miss looks again: no warning
    assert not found.any()


def test_an_index_built_without_the_length_is_rebuilt_with_it(tmp_path):
    cache = EmbeddingCache(tmp_path)
    cache.put_many(FP, keys_of("a"), vectors(1, dim=4))
    folder = shards(tmp_path)[0].parent
    _plant(folder, f"shard-7-{'2' * 32}.npz", dim=7, rows=9)  # the majority, but the wrong length
    fresh = EmbeddingCache(tmp_path)
    assert fresh.get_many(FP, keys_of("a"))[1].shape == (1, 7)  # no length given: the majority
    with pytest.warns(RuntimeWarning, match="7-d vectors where the encoder gives 4-d"):
        found, got = fresh.get_many(FP, keys_of("a"), dim=4)
    assert found.all() and got.shape == (1, 4)
