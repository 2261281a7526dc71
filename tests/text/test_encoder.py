"""Text encoders: hashing, the cache wrapper, load_encoder, and the real MiniLM (e2e)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import rectransfer.text.encoder as encoder_module
from rectransfer.errors import ConfigError
from rectransfer.text.embedding_cache import EmbeddingCache, default_cache_dir
from rectransfer.text.encoder import (
    CachedEncoder,
    Encoder,
    HashingEncoder,
    SentenceTransformerEncoder,
)
from rectransfer.text.load import load_encoder

ROOT = Path(__file__).resolve().parents[2]
BLANKS = ["", " ", "\n\t  "]


class CountingEncoder:
    """Wraps an encoder and records every batch of texts sent to it."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    def encode(self, texts: Sequence[str], *, show_progress: bool | None = None) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts, show_progress=show_progress)


def cached(tmp_path: Path, inner: Encoder | None = None) -> tuple[CachedEncoder, CountingEncoder]:
    counting = CountingEncoder(inner or HashingEncoder(32))
    return CachedEncoder(counting, EmbeddingCache(tmp_path / "cache")), counting


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- HashingEncoder ---


def test_hashing_shape_dtype_and_unit_rows():
    texts = ["Two person tent", "camp stove", "Zelt für zwei Personen", "tent tent tent"]
    out = HashingEncoder(48).encode(texts)
    assert out.shape == (4, 48)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_hashing_blank_texts_give_zero_rows():
    out = HashingEncoder(16).encode(["tent", *BLANKS, "!!!"])
    assert np.linalg.norm(out[0]) == pytest.approx(1.0, abs=1e-6)
    assert not out[1:].any()  # blank, and no word tokens at all


def test_hashing_empty_input():
    assert HashingEncoder(16).encode([]).shape == (0, 16)


def test_hashing_is_deterministic_across_instances_and_case():
    a = HashingEncoder(32).encode(["Dome Tent", "camp stove"])
    b = HashingEncoder(32).encode(["dome tent", "camp stove"])
    np.testing.assert_array_equal(a, b)
    other_seed = HashingEncoder(32, seed=1).encode(["dome tent"])
    assert cosine(a[0], other_seed[0]) < 0.9


def test_hashing_is_the_same_in_another_process():
    # Python's hash() is salted per process; the token vectors must not depend on it.
    code = (
        "from rectransfer.text.encoder import HashingEncoder; "
        "print(HashingEncoder(8).encode(['dome tent for two']).tobytes().hex())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    here = HashingEncoder(8).encode(["dome tent for two"]).tobytes().hex()
    assert result.stdout.strip() == here


def test_hashing_vectors_are_pinned():
    # Changing the algorithm silently would invalidate caches and saved models; bump the
    # fingerprint's version string instead and update these numbers.
    encoder = HashingEncoder(8)
    assert encoder.fingerprint == (
        "3f9541c2b1012f9cc91214a2aeed4c9a5209d622a679a06f28c6a3cefb1cbe68"
    )
    expected = [0.289158, 0.214124, 0.372086, -0.718277, 0.040379, 0.195483, 0.226134, 0.353819]
    np.testing.assert_allclose(encoder.encode(["tent"])[0], expected, atol=1e-5)


def test_hashing_shared_words_are_closer_than_unrelated_text():
    encoder = HashingEncoder(256)
    a, b, c = encoder.encode(["two person dome tent", "dome tent for two", "espresso machine"])
    assert a @ b > a @ c + 0.3
    # and on average over many random pairs, not just one lucky example
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(500)]
    shared, unrelated = [], []
    for _ in range(200):
        x, y, z = (list(rng.choice(words, 4, replace=False)) for _ in range(3))
        y[0] = x[0]
        z = [w for w in z if w not in x] or ["other"]
        vx, vy, vz = HashingEncoder(64).encode([" ".join(x), " ".join(y), " ".join(z)])
        shared.append(vx @ vy)
        unrelated.append(vx @ vz)
    assert np.mean(shared) > np.mean(unrelated) + 0.15
    assert abs(np.mean(unrelated)) < 0.05


def test_hashing_name_and_fingerprint():
    assert HashingEncoder(64).name == "hashing-64"
    fingerprints = {
        HashingEncoder(64).fingerprint,
        HashingEncoder(32).fingerprint,
        HashingEncoder(64, seed=1).fingerprint,
    }
    assert len(fingerprints) == 3
    assert HashingEncoder(64).fingerprint == HashingEncoder(64).fingerprint
    assert all(int(fp, 16) >= 0 and len(fp) == 64 for fp in fingerprints)


def test_encoders_follow_the_protocol(tmp_path):
    assert isinstance(HashingEncoder(), Encoder)
    assert isinstance(cached(tmp_path)[0], Encoder)


@pytest.mark.parametrize("texts", ["a single string", [b"bytes"], ["ok", None]])
def test_encode_wants_a_sequence_of_strings(texts):
    with pytest.raises(TypeError):
        HashingEncoder(8).encode(texts)


@pytest.mark.parametrize("kwargs", [{"dim": 0}, {"dim": 2.5}, {"dim": True}, {"seed": "x"}])
def test_hashing_bad_options(kwargs):
    with pytest.raises(ConfigError):
        HashingEncoder(**kwargs)


def test_progress_is_automatic_only_for_many_texts_on_a_terminal(monkeypatch):
    class Tty:
        def isatty(self) -> bool:
            return True

    assert encoder_module.show_progress_bar(True, 1)
    assert not encoder_module.show_progress_bar(False, 10_000)
    monkeypatch.setattr(sys, "stderr", Tty())
    assert not encoder_module.show_progress_bar(None, 1_999)
    assert encoder_module.show_progress_bar(None, 2_000)
    monkeypatch.setattr(sys, "stderr", None)
    assert not encoder_module.show_progress_bar(None, 2_000)


# --- CachedEncoder ---


def test_cached_gives_the_same_vectors_as_the_wrapped_encoder(tmp_path):
    encoder, _ = cached(tmp_path)
    texts = ["dome tent", "", "camp stove", "dome tent", "  "]
    expected = HashingEncoder(32).encode(texts)
    np.testing.assert_array_equal(encoder.encode(texts), expected)
    np.testing.assert_array_equal(encoder.encode(texts), expected)  # warm
    assert encoder.name == "hashing-32"
    assert encoder.dim == 32
    assert encoder.fingerprint == HashingEncoder(32).fingerprint


def test_cached_second_run_encodes_nothing(tmp_path):
    encoder, counting = cached(tmp_path)
    texts = [f"product number {i}" for i in range(100)]
    encoder.encode(texts)
    assert encoder.last_encoded == 100
    encoder.encode(texts)
    assert encoder.last_encoded == 0
    again, counting_again = cached(tmp_path)  # a new process reading the same folder
    again.encode(texts)
    assert again.last_encoded == 0
    assert counting_again.calls == []
    assert len(counting.calls) == 1


def test_cached_changing_one_of_100_texts_encodes_exactly_one(tmp_path):
    encoder, counting = cached(tmp_path)
    texts = [f"product number {i}" for i in range(100)]
    encoder.encode(texts)
    texts[37] = "a brand new product"
    out = encoder.encode(texts)
    assert encoder.last_encoded == 1
    assert counting.calls[-1] == ["a brand new product"]
    np.testing.assert_array_equal(out, HashingEncoder(32).encode(texts))


def test_cached_duplicates_and_blanks_are_not_sent(tmp_path):
    encoder, counting = cached(tmp_path)
    out = encoder.encode(["tent", "tent", *BLANKS, "stove", "tent"])
    assert encoder.last_encoded == 2
    assert counting.calls == [["tent", "stove"]]
    assert not out[2:5].any()
    np.testing.assert_array_equal(out[0], out[6])


def test_cached_all_blank_or_empty(tmp_path):
    encoder, counting = cached(tmp_path)
    assert encoder.encode([]).shape == (0, 32)
    assert not encoder.encode(BLANKS).any()
    assert encoder.last_encoded == 0
    assert counting.calls == []


def test_cached_fingerprints_never_share_entries(tmp_path):
    texts = ["dome tent", "camp stove"]
    first, _ = cached(tmp_path, HashingEncoder(32, seed=0))
    second, _ = cached(tmp_path, HashingEncoder(32, seed=1))
    first.encode(texts)
    out = second.encode(texts)
    assert second.last_encoded == 2
    np.testing.assert_array_equal(out, HashingEncoder(32, seed=1).encode(texts))


def test_cached_corrupt_shard_is_skipped_and_re_encoded(tmp_path):
    encoder, _ = cached(tmp_path)
    encoder.encode(["dome tent", "camp stove"])
    folder = tmp_path / "cache" / "embeddings" / encoder.fingerprint
    (shard,) = list(folder.glob("shard-*.npz"))
    shard.write_bytes(shard.read_bytes()[:100])
    fresh, _ = cached(tmp_path)
    with pytest.warns(RuntimeWarning, match="embedding cache shard .* is not usable"):
        out = fresh.encode(["dome tent", "camp stove"])
    assert fresh.last_encoded == 2
    np.testing.assert_array_equal(out, HashingEncoder(32).encode(["dome tent", "camp stove"]))
    third, _ = cached(tmp_path)
    third.encode(["dome tent", "camp stove"])
    assert third.last_encoded == 0


def test_cached_leftover_temp_file_is_ignored(tmp_path):
    encoder, _ = cached(tmp_path)
    encoder.encode(["dome tent"])
    folder = tmp_path / "cache" / "embeddings" / encoder.fingerprint
    (folder / ".tmp-deadbeef").write_bytes(b"PK\x03\x04 half written")
    again, _ = cached(tmp_path)
    again.encode(["dome tent", "camp stove"])
    assert again.last_encoded == 1


def test_cached_compaction_keeps_every_entry(tmp_path):
    counting = CountingEncoder(HashingEncoder(32))
    encoder = CachedEncoder(counting, EmbeddingCache(tmp_path, max_shards=4))
    texts = [f"item {i}" for i in range(30)]
    for i in range(0, 30, 3):
        encoder.encode(texts[i : i + 3])
    folder = tmp_path / "embeddings" / encoder.fingerprint
    assert len(list(folder.glob("shard-*.npz"))) <= 4
    again = CachedEncoder(HashingEncoder(32), EmbeddingCache(tmp_path))
    np.testing.assert_array_equal(again.encode(texts), HashingEncoder(32).encode(texts))
    assert again.last_encoded == 0


def test_cached_unwritable_cache_warns_and_still_encodes(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    encoder = CachedEncoder(HashingEncoder(8), EmbeddingCache(blocker))
    with pytest.warns(RuntimeWarning, match="could not write to the embedding cache"):
        out = encoder.encode(["dome tent"])
    np.testing.assert_array_equal(out, HashingEncoder(8).encode(["dome tent"]))


def test_cached_does_not_stack_and_exposes_the_plain_encoder(tmp_path):
    inner = HashingEncoder(8)
    once = CachedEncoder(inner, EmbeddingCache(tmp_path))
    twice = CachedEncoder(once, EmbeddingCache(tmp_path))
    assert twice.encoder is inner


# --- load_encoder and friends ---


def test_load_encoder_hashing_specs(tmp_path):
    wrapped = load_encoder("hashing", cache_dir=tmp_path)
    assert isinstance(wrapped, CachedEncoder)
    assert wrapped.cache.directory == tmp_path
    assert wrapped.name == "hashing-64"
    plain = load_encoder("hashing:16", use_cache=False)
    assert isinstance(plain, HashingEncoder)
    assert plain.dim == 16


@pytest.mark.parametrize("spec", ["hashing:0", "hashing:x", "hashing:", "", "   "])
def test_load_encoder_bad_specs(spec):
    with pytest.raises(ConfigError):
        load_encoder(spec, use_cache=False)


def test_load_encoder_options_belong_to_sentence_transformers():
    with pytest.raises(ConfigError, match="batch_size"):
        load_encoder("hashing", use_cache=False, batch_size=8)
    with pytest.raises(ConfigError, match="unknown encoder option"):
        load_encoder("default", use_cache=False, normalise=False)


def test_missing_model_path_raises_config_error(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigError, match="does not exist") as info:
        load_encoder(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(ConfigError, match="does not exist"):
        SentenceTransformerEncoder(str(missing))


def test_a_folder_without_modules_json_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a sentence-transformers model directory"):
        load_encoder(tmp_path)
    with pytest.raises(ConfigError, match="not a sentence-transformers model directory"):
        load_encoder(tmp_path / "config.json")


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("RECTRANSFER_CACHE_DIR", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("RECTRANSFER_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "rectransfer"


# --- SentenceTransformerEncoder without loading a model ---


def fake_model(folder: Path, weights: bytes = b"weights") -> Path:
    folder.mkdir(parents=True)
    (folder / "modules.json").write_text("[]")
    (folder / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_fingerprint_hashes_the_files_without_loading_the_model(tmp_path):
    model = fake_model(tmp_path / "shop-model")
    encoder = SentenceTransformerEncoder(model)
    assert encoder.name == "shop-model"
    fingerprint = encoder.fingerprint
    assert encoder._model is None  # hashing files does not load torch
    assert len(fingerprint) == 64
    copy = shutil.copytree(model, tmp_path / "elsewhere" / "copy")
    (copy / ".gitattributes").write_text("*.safetensors filter=lfs")  # hidden files don't count
    assert SentenceTransformerEncoder(copy).fingerprint == fingerprint
    assert SentenceTransformerEncoder(model, max_seq_length=64).fingerprint != fingerprint
    assert SentenceTransformerEncoder(model, batch_size=8).fingerprint == fingerprint
    (copy / "model.safetensors").write_bytes(b"other weights")
    assert SentenceTransformerEncoder(copy).fingerprint != fingerprint
    (copy / "1_Pooling" / "config.json").rename(copy / "1_Pooling" / "renamed.json")
    assert SentenceTransformerEncoder(copy).fingerprint != fingerprint


@pytest.mark.parametrize(
    "kwargs",
    [{"batch_size": 0}, {"max_seq_length": -1}, {"max_seq_length": 513}, {"device": ""}],
)
def test_sentence_transformer_bad_options(tmp_path, kwargs):
    with pytest.raises(ConfigError):
        SentenceTransformerEncoder(fake_model(tmp_path / "m"), **kwargs)


def test_sentence_transformer_is_picklable_before_loading(tmp_path):
    encoder = SentenceTransformerEncoder(fake_model(tmp_path / "m"))
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone.fingerprint == encoder.fingerprint


def test_a_broken_model_folder_fails_with_config_error_on_first_use(tmp_path):
    encoder = SentenceTransformerEncoder(fake_model(tmp_path / "broken"))
    with pytest.raises(ConfigError, match="could not load") as info:
        encoder.encode(["dome tent"])
    assert str(tmp_path / "broken") in str(info.value)


def test_packaged_model_is_lazy_and_named():
    encoder = SentenceTransformerEncoder()
    assert encoder.name == "all-MiniLM-L6-v2"
    assert encoder._model is None


# --- the real packaged MiniLM ---


@pytest.mark.e2e
def test_real_minilm_end_to_end(tmp_path):
    encoder = load_encoder(None, use_cache=False)
    assert isinstance(encoder, SentenceTransformerEncoder)
    assert encoder.name == "all-MiniLM-L6-v2"
    texts = ["two person backpacking tent", "ultralight dome tent for 2", "espresso machine", " "]
    out = encoder.encode(texts)
    assert encoder.dim == 384
    assert out.shape == (4, 384)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out[:3], axis=1), 1.0, atol=1e-5)
    assert not out[3].any()
    tent, paraphrase, espresso = out[:3]
    assert tent @ paraphrase > tent @ espresso + 0.2
    np.testing.assert_allclose(encoder.encode(texts[2:1:-1] + texts[:1]), out[[2, 0]], atol=1e-5)
    again = load_encoder("default", use_cache=False)
    assert again.fingerprint == encoder.fingerprint
    by_path = SentenceTransformerEncoder(encoder.model_path, max_seq_length=128)
    assert by_path.name == "all-MiniLM-L6-v2"
    assert by_path.fingerprint != encoder.fingerprint
    with pytest.raises(ConfigError, match="does not exist"):
        load_encoder(tmp_path / "missing-model", use_cache=False)


# --- a broken cache never stops a run: it re-encodes (issue 16) ---


def _planted_cache(tmp_path, encoder, dim):
    """A cache whose only shard for ``encoder`` holds well-formed vectors of length ``dim``."""
    folder = tmp_path / "embeddings" / encoder.fingerprint
    folder.mkdir(parents=True)
    keys = b"".join(EmbeddingCache.key(t) for t in ["dome tent", "camp stove"])
    with open(folder / f"shard-1-{'a' * 32}.npz", "wb") as handle:
        np.savez(
            handle,
            keys=np.frombuffer(keys, dtype="S32"),
            vectors=np.ones((2, dim), dtype=np.float32),
        )
    return EmbeddingCache(tmp_path), folder


def test_a_cache_of_another_length_is_set_aside_and_the_texts_encoded_again(tmp_path):
    encoder = HashingEncoder(16)
    cache, folder = _planted_cache(tmp_path, encoder, dim=8)
    cached = CachedEncoder(encoder, cache)
    with pytest.warns(RuntimeWarning, match="8-d vectors where the encoder gives 16-d"):
        got = cached.encode(["dome tent", "camp stove"])
    np.testing.assert_array_equal(got, encoder.encode(["dome tent", "camp stove"]))
    assert cached.last_encoded == 2
    # The next run finds the right vectors in the cache and encodes nothing.
    again = CachedEncoder(encoder, EmbeddingCache(tmp_path))
    np.testing.assert_array_equal(again.encode(["dome tent", "camp stove"]), got)
    assert again.last_encoded == 0
    assert len(list(folder.glob("*.bad-*"))) == 1


def test_an_unusable_cache_folder_costs_speed_not_the_run(tmp_path):
    encoder = HashingEncoder(16)
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / encoder.fingerprint).write_text("a file where a folder belongs")
    cached = CachedEncoder(encoder, EmbeddingCache(tmp_path))
    with pytest.warns(RuntimeWarning, match="could not write to the embedding cache"):
        got = cached.encode(["dome tent"])
    np.testing.assert_array_equal(got, encoder.encode(["dome tent"]))


def test_the_sentence_transformer_length_is_read_without_loading_the_model():
    encoder = SentenceTransformerEncoder()
    assert encoder.dim_without_loading() == 384
    assert encoder._model is None  # a fully cached run never loads the model
