"""The int8 ONNX encoder: model checks, fingerprint, stored export, specs, and the bench command.

Most tests run a tiny randomly initialised BERT built here (exported in a few seconds); the
fidelity tests against the float32 model use the real packaged all-MiniLM-L6-v2 (``e2e``).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rectransfer.errors import ConfigError
from rectransfer.text import onnx_export
from rectransfer.text.encoder import CachedEncoder, Encoder, SentenceTransformerEncoder
from rectransfer.text.load import encoder_spec, load_encoder
from rectransfer.text.onnx_int8 import OnnxInt8Encoder

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_SHOP = ROOT / "sample_data" / "targets" / "trailhead_market"
WORDS = [
    *("tent", "stove", "espresso", "machine", "coffee", "beans", "trail", "shoes", "socks"),
    *("paper", "printer", "pen", "desk", "lamp", "chair", "toy", "train", "set", "wooden"),
    *("two", "person", "backpacking", "category", "brand", "camping", "kitchen", "office"),
    *("sports", "running", "model", "great", "for", "weekend"),
]
TEXTS = ["two person backpacking tent", "espresso machine", "desk lamp", "wooden toy train set"]


def make_tiny_model(folder: Path, *, model_type: str = "bert", seed: int = 0) -> Path:
    """A tiny random sentence-transformers model (Transformer + mean Pooling + Normalize)."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import AutoConfig, AutoModel

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    characters = list("abcdefghijklmnopqrstuvwxyz0123456789.,:>'()")
    vocab = {t: i for i, t in enumerate(specials + WORDS + characters)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    AutoModel.from_config(config).save_pretrained(folder)
    modules = [
        {"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
        for i, (path, kind) in enumerate(
            [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize")]
        )
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    pooling = {"word_embedding_dimension": 32, "pooling_mode_mean_tokens": True}
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 64}))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory, tiny: Path) -> Path:
    """A cache folder that already holds the tiny model's export (exported once per module)."""
    cache = tmp_path_factory.mktemp("tiny-cache")
    encoder = OnnxInt8Encoder(tiny, cache_dir=cache, max_seq_length=64).load()
    assert encoder.exports == 1
    return cache


def tiny_encoder(
    tiny: Path, cache: Path, *, max_seq_length: int | None = 64, **kwargs: Any
) -> OnnxInt8Encoder:
    return OnnxInt8Encoder(tiny, cache_dir=cache, max_seq_length=max_seq_length, **kwargs)


def torch_vectors(model_dir: Path, texts: list[str]) -> np.ndarray:
    """Mean-pooled, normalised float32 vectors straight from transformers (one text at a time)."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    model = AutoModel.from_pretrained(model_dir).eval()
    rows = []
    for text in texts:
        ids = torch.tensor([tokenizer.encode(text).ids])
        with torch.no_grad():
            hidden = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        vector = hidden[0].mean(dim=0).numpy()
        rows.append(vector / np.linalg.norm(vector))
    return np.array(rows, dtype=np.float32)


# --- encoding ---


def test_tiny_int8_vectors_follow_the_torch_model(tiny, tiny_cache):
    encoder = tiny_encoder(tiny, tiny_cache)
    texts = [*TEXTS, "tent", "coffee beans for the espresso machine " * 3]
    out = encoder.encode(texts)
    assert out.shape == (len(texts), 32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(out * torch_vectors(tiny, texts), axis=1)
    assert cosine.min() > 0.98
    # Batching and order change a vector only a little: activations are quantised with one
    # scale per batch, so a text's vector depends slightly on its batch neighbours.
    single = np.vstack([encoder.encode([t]) for t in texts])
    assert np.sum(single * out, axis=1).min() > 0.9999
    assert np.sum(encoder.encode(texts[::-1])[::-1] * out, axis=1).min() > 0.9999


def test_blank_texts_give_zero_rows_and_are_not_sent(tiny, tiny_cache, monkeypatch):
    encoder = tiny_encoder(tiny, tiny_cache)
    out = encoder.encode(["", "tent", " ", "\n\t", "tent"])
    assert out.shape == (5, 32)
    assert not out[[0, 2, 3]].any()
    np.testing.assert_array_equal(out[1], out[4])
    fresh = tiny_encoder(tiny, tiny_cache)
    monkeypatch.setattr(fresh, "_load", lambda: pytest.fail("blank texts must not load the model"))
    assert not fresh.encode(["", "  "]).any()
    assert fresh.encode([]).shape == (0, 32)


def test_long_texts_are_truncated_at_max_seq_length(tiny, tiny_cache):
    long = " ".join(["tent"] * 200)
    short = tiny_encoder(tiny, tiny_cache, max_seq_length=8).encode([long, " ".join(["tent"] * 6)])
    np.testing.assert_allclose(short[0], short[1], atol=1e-5)  # 6 words + [CLS] + [SEP] = 8


def test_encode_wants_a_sequence_of_strings(tiny, tiny_cache):
    encoder = tiny_encoder(tiny, tiny_cache)
    with pytest.raises(TypeError):
        encoder.encode("tent")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encoder.encode(["tent", 3])  # type: ignore[list-item]


# --- fingerprint and options ---


def test_fingerprint_differs_from_fp32_and_follows_the_settings(tiny, tmp_path):
    encoder = OnnxInt8Encoder(tiny, cache_dir=tmp_path, max_seq_length=64)
    fingerprint = encoder.fingerprint
    assert len(fingerprint) == 64
    assert not (tmp_path / "onnx").exists()  # a fingerprint never exports
    assert fingerprint != SentenceTransformerEncoder(tiny, max_seq_length=64).fingerprint
    assert OnnxInt8Encoder(tiny, cache_dir=tmp_path, max_seq_length=32).fingerprint != fingerprint
    same = OnnxInt8Encoder(tiny, cache_dir=tmp_path / "x", max_seq_length=64, batch_tokens=64)
    assert same.fingerprint == fingerprint  # batching and the cache folder change no vector
    assert OnnxInt8Encoder(tiny, max_seq_length=64, threads=1).fingerprint == fingerprint
    # max_seq_length does not change the stored graph, so the export is shared
    assert OnnxInt8Encoder(tiny, max_seq_length=32).export_key == encoder.export_key
    copy = shutil.copytree(tiny, tmp_path / "copy")
    assert OnnxInt8Encoder(copy, max_seq_length=64).fingerprint == fingerprint
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    assert OnnxInt8Encoder(copy, max_seq_length=64).fingerprint != fingerprint


@pytest.mark.parametrize(
    "kwargs",
    [{"max_seq_length": 0}, {"max_seq_length": 129}, {"batch_tokens": 0}, {"threads": 0}],
)
def test_bad_options(tiny, kwargs):
    with pytest.raises(ConfigError):
        OnnxInt8Encoder(tiny, **kwargs)


def test_default_max_seq_length_is_256_or_the_model_limit(tiny):
    assert OnnxInt8Encoder(tiny).max_seq_length == 128  # the tiny model's limit
    assert OnnxInt8Encoder().max_seq_length == 256


def test_picklable_before_and_after_loading(tiny, tiny_cache):
    encoder = tiny_encoder(tiny, tiny_cache)
    clone = pickle.loads(pickle.dumps(encoder))
    assert clone.fingerprint == encoder.fingerprint
    expected = encoder.encode(TEXTS)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(encoder)).encode(TEXTS), expected)


def test_packaged_model_is_named_and_lazy(tmp_path):
    encoder = OnnxInt8Encoder(cache_dir=tmp_path)
    assert isinstance(encoder, Encoder)
    assert encoder.name == "all-MiniLM-L6-v2-onnx-int8"
    assert encoder.dim == 384
    assert encoder.fingerprint != SentenceTransformerEncoder().fingerprint
    assert encoder._session is None
    assert not (tmp_path / "onnx").exists()


# --- the stored export ---


def test_the_stored_export_is_reused(tiny, tiny_cache):
    # tiny_cache was filled by a first instance, which exported once
    export_dir = tiny_encoder(tiny, tiny_cache).export_dir
    meta = json.loads((export_dir / "meta.json").read_text())
    assert meta["sha256"] and meta["probe_min_cosine"] > 0.95
    assert [p.name for p in (tiny_cache / "onnx").iterdir()] == [export_dir.name]  # no leftovers
    second = tiny_encoder(tiny, tiny_cache)
    expected = second.encode(TEXTS)
    assert second.exports == 0
    assert second.export_seconds == 0.0
    third = tiny_encoder(tiny, tiny_cache, max_seq_length=32)  # other setting, same graph
    third.encode(TEXTS)
    assert third.exports == 0
    np.testing.assert_allclose(tiny_encoder(tiny, tiny_cache).encode(TEXTS), expected, atol=1e-6)


def _damage(export_dir: Path, damage: str) -> None:
    model = export_dir / "model.onnx"
    if damage == "truncate":
        with open(model, "r+b") as handle:
            handle.truncate(model.stat().st_size // 2)
    elif damage == "flip":  # same size, one byte changed: only the hash can tell
        data = bytearray(model.read_bytes())
        data[len(data) // 2] ^= 0xFF
        model.write_bytes(bytes(data))
    elif damage == "no-model":
        model.unlink()
    elif damage == "no-meta":
        (export_dir / "meta.json").unlink()
    else:
        (export_dir / "meta.json").write_text("{not json")


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-model", "no-meta", "bad-meta"])
def test_a_damaged_stored_export_is_detected(tiny, tiny_cache, tmp_path, damage):
    cache = shutil.copytree(tiny_cache, tmp_path / "cache")
    export_dir = tiny_encoder(tiny, cache).export_dir
    assert onnx_export.check_export(export_dir) is None
    _damage(export_dir, damage)
    assert onnx_export.check_export(export_dir) is not None


def test_a_damaged_stored_export_is_rebuilt_not_used(tiny, tiny_cache, tmp_path):
    cache = shutil.copytree(tiny_cache, tmp_path / "cache")
    encoder = tiny_encoder(tiny, cache)
    expected = tiny_encoder(tiny, tiny_cache).encode(TEXTS)
    _damage(encoder.export_dir, "truncate")
    with pytest.warns(RuntimeWarning, match="unusable"):
        out = encoder.encode(TEXTS)
    assert encoder.exports == 1
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert onnx_export.check_export(encoder.export_dir) is None
    assert [p.name for p in (cache / "onnx").iterdir()] == [encoder.export_key]


def test_a_failed_export_leaves_nothing_behind(tiny, tmp_path, monkeypatch):
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(onnx_export, "write_meta", fail)
    encoder = tiny_encoder(tiny, tmp_path)
    with pytest.raises(OSError, match="disk full"):
        encoder.encode(TEXTS)
    assert list((tmp_path / "onnx").iterdir()) == []


KILLED_EXPORT = """
import sys, time
import rectransfer.text.onnx_export as m
def hang(staging, *args):
    print("staged", flush=True)
    time.sleep(120)
m.write_meta = hang
m.OnnxInt8Encoder(sys.argv[1], cache_dir=sys.argv[2], max_seq_length=64).load()
"""


@pytest.mark.slow  # a subprocess imports torch and exports: about 10 s
def test_a_killed_export_is_never_taken_for_complete(tiny, tmp_path):
    cache = tmp_path / "cache"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXPORT, str(tiny), str(cache)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        lines = iter(child.stdout.readline, "")
        assert "staged" in (line.strip() for line in lines)  # int8 graph written, no meta yet
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    encoder = tiny_encoder(tiny, cache)
    leftovers = [p for p in (cache / "onnx").iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == 1 and (leftovers[0] / "model.onnx").is_file()
    assert not encoder.export_dir.exists()
    encoder.encode(TEXTS)
    assert encoder.exports == 1
    assert [p.name for p in (cache / "onnx").iterdir()] == [encoder.export_key]  # swept


# --- unsupported models ---


def _edit(folder: Path, relative: str, change: dict[str, object]) -> None:
    path = folder / relative
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("cls-pooling", "mean pooling only"),
        ("new-style-max-pooling", "mean pooling only"),
        ("dense-module", "Transformer"),
        ("model-type", "BERT-like"),
        ("no-tokenizer-json", "tokenizer.json"),
        ("prompt", "prompt"),
        ("no-modules-json", "modules.json"),
    ],
)
def test_an_unsupported_model_folder_is_refused(tiny, tmp_path, breakage, message):
    folder = shutil.copytree(tiny, tmp_path / "model")
    if breakage == "cls-pooling":
        _edit(folder, "1_Pooling/config.json", {"pooling_mode_mean_tokens": False})
        _edit(folder, "1_Pooling/config.json", {"pooling_mode_cls_token": True})
    elif breakage == "new-style-max-pooling":
        (folder / "1_Pooling" / "config.json").write_text(
            json.dumps({"embedding_dimension": 32, "pooling_mode": "max"})
        )
    elif breakage == "dense-module":
        modules = json.loads((folder / "modules.json").read_text())
        dense = {"idx": 2, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
        modules.insert(2, dense)
        (folder / "modules.json").write_text(json.dumps(modules))
    elif breakage == "model-type":
        _edit(folder, "config.json", {"model_type": "gpt2"})
    elif breakage == "no-tokenizer-json":
        (folder / "tokenizer.json").unlink()
    elif breakage == "prompt":
        (folder / "config_sentence_transformers.json").write_text(
            json.dumps({"default_prompt_name": "query", "prompts": {"query": "query: "}})
        )
    else:
        (folder / "modules.json").unlink()
    with pytest.raises(ConfigError, match=message) as info:
        OnnxInt8Encoder(folder)
    assert str(folder) in str(info.value)


def test_new_style_mean_pooling_config_is_accepted(tiny, tmp_path):
    folder = shutil.copytree(tiny, tmp_path / "model")
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"embedding_dimension": 32, "pooling_mode": "mean", "include_prompt": True})
    )
    assert OnnxInt8Encoder(folder).dim == 32


# --- specs ---


def test_spec_round_trip_through_load_encoder(tiny, tiny_cache):
    encoder = load_encoder(f"onnx-int8:{tiny}", cache_dir=tiny_cache)
    assert isinstance(encoder, CachedEncoder)
    assert isinstance(encoder.encoder, OnnxInt8Encoder)
    assert encoder.encoder.cache_dir == tiny_cache  # the export is stored beside the vectors
    spec = encoder_spec(encoder)
    assert spec == f"onnx-int8:{tiny.resolve()}"
    again = load_encoder(spec, use_cache=False)
    assert isinstance(again, OnnxInt8Encoder)
    assert again.fingerprint == encoder.fingerprint
    fp32 = load_encoder(str(tiny), use_cache=False, max_seq_length=128)
    assert fp32.fingerprint != encoder.fingerprint


def test_default_spec_round_trip(tmp_path):
    for spec in ("onnx-int8:default", "onnx-int8", " onnx-int8:default "):
        encoder = load_encoder(spec, cache_dir=tmp_path)
        assert encoder_spec(encoder) == "onnx-int8:default"
        assert encoder.name == "all-MiniLM-L6-v2-onnx-int8"
    assert encoder_spec(load_encoder("default", use_cache=False)) == "default"
    assert encoder_spec(load_encoder("hashing:16", use_cache=False)) == "hashing:16"


@pytest.mark.parametrize("spec", ["onnx-int8:hashing:64", "onnx-int8:onnx-int8:default"])
def test_bad_int8_specs(spec):
    with pytest.raises(ConfigError, match="onnx-int8"):
        load_encoder(spec, use_cache=False)


def test_int8_spec_options(tiny, tmp_path):
    encoder = load_encoder(f"onnx-int8:{tiny}", use_cache=False, max_seq_length=32, threads=1)
    assert isinstance(encoder, OnnxInt8Encoder)
    assert (encoder.max_seq_length, encoder.threads) == (32, 1)
    with pytest.raises(ConfigError, match="unknown encoder option"):
        load_encoder(f"onnx-int8:{tiny}", use_cache=False, device="cpu")
    with pytest.raises(ConfigError, match="does not exist"):
        load_encoder(f"onnx-int8:{tmp_path / 'missing'}", use_cache=False)


# --- the bench command ---


def test_bench_encode_smoke(tiny):
    from rectransfer.evaluation.perf import encode_bench

    args = argparse.Namespace(
        dataset=[SAMPLE_SHOP],
        n=40,
        encoder=f"onnx-int8:{tiny}",
        max_seq_length=64,
        chunks=2,
        change_fraction=0.05,
        seed=0,
    )
    result = encode_bench.run(args)
    for key in (
        "texts",
        "seconds",
        "baseline_seconds",
        "speedup",
        "mean_cosine",
        "min_cosine",
        "reencoded_after_1pct_change",
        "reencoded_unchanged",
        "export_seconds",
        "texts_per_second",
        "settings",
    ):
        assert key in result, key
    assert result["texts"] == 40
    assert result["reencoded_unchanged"] == 0
    assert result["changed_titles"] == 2
    assert result["reencoded_after_1pct_change"] == 2
    assert result["expected_reencoded_after_1pct_change"] == 2
    assert result["settings"]["max_seq_length"] == 64
    assert result["min_cosine"] > 0.9
    json.dumps(result)  # JSON-ready


def test_bench_encode_parser_and_bad_options():
    from rectransfer.evaluation.perf import encode_bench

    parser = argparse.ArgumentParser()
    encode_bench.add_arguments(parser)
    args = parser.parse_args(["--dataset", str(SAMPLE_SHOP), "--n", "0"])
    assert args.encoder == "onnx-int8:default"
    with pytest.raises(ConfigError, match="--n"):
        encode_bench.run(args)


# --- against the real float32 model ---


PLANTED = {
    "two person backpacking tent": "ultralight dome tent for 2 people, camping",
    "espresso machine": "stainless steel espresso maker with milk frother, coffee",
    "trail running shoes": "men's off-road running shoes with grippy soles",
    "printer paper": "A4 copy paper, 500 sheets, bright white, office supplies",
    "wooden toy train": "wooden railway train set with bridge for toddlers",
}
PRODUCTS = [
    "VTech DECT 6.0 cordless phone, white/grey, 1 handset. Category: Office Electronics.",
    "Post-it Super Sticky Notes, 3 x 3 in, 12 pads, assorted colours. Brand: Post-it.",
    "Pilot G2 retractable gel pens, fine point, black ink, 12-pack.",
    "Swingline stapler, 20 sheet capacity, desktop, black. Category: Office Products > Staplers",
    "HP 64 black ink cartridge for ENVY Photo printers. Brand: HP.",
    "Fellowes paper shredder, 10-sheet cross-cut, with basket.",
    "Ergonomic mesh office chair with lumbar support and adjustable armrests.",
    "LED desk lamp with USB charging port, dimmable, 5 colour modes.",
    "Coleman camp stove, 2 burner propane, portable. Category: Camping > Stoves.",
    "Sleeping bag for 3 seasons, rated to 20F, mummy shape. Brand: Ridge.",
    "Burr coffee grinder with 18 settings, stainless steel.",
    "Organic whole bean coffee, dark roast, 2 lb bag.",
    "Hydration vest for trail running, 5 litres, with two soft flasks.",
    "GPS running watch with heart rate monitor and 14-day battery.",
    "Stand mixer, 5 quart bowl, tilt head, 10 speeds. Category: Kitchen > Mixers.",
    "Non-stick baking sheet set of 3, aluminium. Brand: Bakeline.",
    "LEGO City fire station building kit, 509 pieces, ages 6+.",
    "Plush teddy bear, 12 inches, soft and cuddly, brown.",
    "Jigsaw puzzle 1000 pieces, landscape, for adults.",
    "Remote control car, 1:16 scale, 2.4 GHz, off-road.",
    "Scientific calculator with 240 functions, solar and battery.",
    "Three-ring binder, 2 inch, heavy duty, with clear view cover.",
    "Label maker with QWERTY keyboard and 3 tape widths.",
    "Whiteboard markers, dry erase, chisel tip, assorted colours, 8 pack.",
    "Monitor stand riser with drawer, bamboo.",
    "Wireless keyboard and mouse combo, quiet keys, USB receiver.",
    "Envelopes #10, self-seal, security tint, 500 count.",
    "Laminator for A4 and letter, 2 rollers, warms up in 4 minutes.",
    "Backpacking water filter, 0.1 micron, 100,000 gallons.",
    "Headlamp, 400 lumens, rechargeable, waterproof.",
]


@pytest.fixture(scope="module")
def real_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[OnnxInt8Encoder, object]:
    cache = tmp_path_factory.mktemp("minilm-int8")
    return OnnxInt8Encoder(cache_dir=cache), SentenceTransformerEncoder()


@pytest.mark.e2e
def test_real_int8_is_close_to_fp32_on_product_texts(real_pair):
    int8, fp32 = real_pair
    texts = PRODUCTS + list(PLANTED) + list(PLANTED.values())
    ours = int8.encode([*texts, ""])
    theirs = fp32.encode(texts)
    assert not ours[-1].any()
    cosine = np.sum(ours[:-1] * theirs, axis=1)
    assert cosine.min() >= 0.98
    assert cosine.mean() >= 0.99


@pytest.mark.e2e
def test_real_int8_keeps_the_planted_nearest_neighbours(real_pair):
    int8, fp32 = real_pair
    queries = list(PLANTED)
    candidates = list(PLANTED.values()) + PRODUCTS
    for encoder in (int8, fp32):
        scores = encoder.encode(queries) @ encoder.encode(candidates).T
        assert scores.argmax(axis=1).tolist() == list(range(len(queries)))
    # and every query's top three candidates are the same under int8 and float32
    ours = int8.encode(queries) @ int8.encode(candidates).T
    theirs = fp32.encode(queries) @ fp32.encode(candidates).T
    for a, b in zip(ours, theirs, strict=True):
        assert set(np.argsort(-a)[:3]) == set(np.argsort(-b)[:3])
