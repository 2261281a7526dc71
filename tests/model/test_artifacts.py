import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import rectransfer as rt
from rectransfer.model.artifacts import CHECKSUM_FILE, CONFIG_FILE, RANKER_FILE
from tests.conftest import make_shop

LAST_FEATURE = len(rt.FEATURE_NAMES) - 1


def test_save_load_round_trip_gives_identical_recommendations(broad, encoder, tmp_path):
    shop = make_shop("roundtrip", seed=8, n_users=30)
    path = broad.save(tmp_path / "model")
    loaded = rt.RecModel.load(path, encoder=encoder)
    assert loaded.model_version == broad.model_version
    assert loaded.config == broad.config
    assert rt.recommend(loaded, shop, k=5).equals(rt.recommend(broad, shop, k=5))


def test_save_replaces_an_existing_model_and_leaves_no_temporary_folders(broad, tmp_path):
    target = tmp_path / "model"
    broad.save(target)
    broad.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [CONFIG_FILE, RANKER_FILE, CHECKSUM_FILE]
    )


def test_a_failed_save_leaves_the_previous_model_intact(broad, tmp_path, monkeypatch):
    target = tmp_path / "model"
    broad.save(target)
    before = (target / RANKER_FILE).read_text()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("rectransfer.model.artifacts._sha256", broken)
    with pytest.raises(OSError, match="disk full"):
        broad.save(target)
    assert (target / RANKER_FILE).read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / RANKER_FILE).unlink(), "missing 'ranker.txt'"),
        (lambda d: (d / CONFIG_FILE).write_text("{}"), "checksum does not match"),
        (lambda d: (d / RANKER_FILE).write_text("tree\n"), "checksum does not match"),
    ],
)
def test_damaged_model_directories_raise_a_clear_error(broad, tmp_path, damage, message):
    path = broad.save(tmp_path / "model")
    damage(path)
    with pytest.raises(rt.IncompatibleArtifactError, match=message):
        rt.RecModel.load(path)


def _rewrite_config(path, change):
    from rectransfer.model.artifacts import _sha256

    config = json.loads((path / CONFIG_FILE).read_text())
    change(config)
    (path / CONFIG_FILE).write_text(json.dumps(config))
    sums = json.loads((path / CHECKSUM_FILE).read_text())
    sums[CONFIG_FILE] = _sha256(path / CONFIG_FILE)
    (path / CHECKSUM_FILE).write_text(json.dumps(sums))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(format_version=99), "format_version 99"),
        (lambda c: c.update(feature_names=["a", "b"]), "features"),
        (lambda c: c.update(unexpected=1), "unexpected"),
        (lambda c: c.pop("encoder"), "encoder"),
    ],
)
def test_incompatible_configs_raise_a_clear_error(broad, tmp_path, change, message):
    path = broad.save(tmp_path / "model")
    _rewrite_config(path, change)
    with pytest.raises(rt.IncompatibleArtifactError, match=message):
        rt.RecModel.load(path)


def test_another_encoder_is_refused(broad, tmp_path):
    path = broad.save(tmp_path / "model")
    with pytest.raises(rt.IncompatibleArtifactError, match="encoder"):
        rt.RecModel.load(path, encoder=rt.HashingEncoder(32))


def test_missing_directory(tmp_path):
    with pytest.raises(rt.IncompatibleArtifactError, match="no model directory"):
        rt.RecModel.load(tmp_path / "nope")


def test_a_loaded_model_rebuilds_its_encoder_from_the_saved_spec(broad, tmp_path):
    path = broad.save(tmp_path / "model")
    loaded = rt.RecModel.load(path)  # no encoder given
    assert loaded.config.encoder.spec == "hashing:64"
    assert loaded.encoder.fingerprint == broad.config.encoder.fingerprint


# --- ranker.txt is checked before LightGBM reads it; non-regular files are refused ---


def _tree_sizes(text: str) -> str:
    """The ``tree_sizes`` header of ``text``: the length of each ``Tree=`` block up to the next."""
    body = text[text.index("\nTree=0\n") + 1 : text.index("end of trees")]
    blocks = re.split(r"(?m)^(?=Tree=)", body)[1:]
    return "tree_sizes=" + " ".join(str(len(block)) for block in blocks)


def _edit_ranker(path, edit, *, resize: bool = True) -> None:
    """Edit ``ranker.txt`` consistently: ``tree_sizes`` and the checksums follow the edit."""
    from rectransfer.model.artifacts import _sha256

    text = edit((path / RANKER_FILE).read_text())
    if resize:
        text = re.sub(r"(?m)^tree_sizes=.*$", _tree_sizes(text), text, count=1)
    (path / RANKER_FILE).write_text(text)
    sums = json.loads((path / CHECKSUM_FILE).read_text())
    sums[RANKER_FILE] = _sha256(path / RANKER_FILE)
    (path / CHECKSUM_FILE).write_text(json.dumps(sums))


def _first_value(field: str, value: str):
    """An edit setting the first value of the first ``field=`` line (tree 0's) to ``value``."""
    return lambda text: re.sub(rf"(?m)^({field}=)\S+", rf"\g<1>{value}", text, count=1)


def test_the_tree_sizes_helper_reproduces_what_lightgbm_writes(broad, tmp_path):
    path = broad.save(tmp_path / "model")
    text = (path / RANKER_FILE).read_text()
    assert re.search(r"(?m)^tree_sizes=.*$", text).group(0) == _tree_sizes(text)


@pytest.mark.parametrize(
    ("edit", "resize", "message"),
    [
        # a child index past the nodes: LightGBM segfaults when it scores
        (_first_value("left_child", "1000"), True, "tree 0: field 'left_child, right_child'"),
        # a leaf reached twice
        (_first_value("right_child", "-1"), True, "leaf 0 has two parents"),
        # no tree_sizes: LightGBM parses the trees unbounded
        (
            lambda t: re.sub(r"(?m)^tree_sizes=.*\n", "", t),
            False,
            "header: field 'tree_sizes' is missing",
        ),
        # a tree_sizes that does not match the trees: LightGBM aborts
        (_first_value("threshold", "nan"), False, "tree 0: field 'tree_sizes'"),
        # a feature past the 28 the model has: LightGBM reads it silently from elsewhere
        (_first_value("split_feature", "40"), True, r"tree 0: field 'split_feature': \[0\] = 40"),
        (_first_value("threshold", "nan"), True, "tree 0: field 'threshold': value 'nan'"),
        (_first_value("leaf_value", "inf"), True, "tree 0: field 'leaf_value': value 'inf'"),
        (_first_value("num_leaves", "100000000"), True, "tree 0: field 'num_leaves'"),
        (
            _first_value("max_feature_idx", "40"),
            True,
            f"header: field 'max_feature_idx': 40 is outside {LAST_FEATURE}..{LAST_FEATURE}",
        ),
    ],
)
def test_a_consistently_edited_ranker_is_refused_before_lightgbm_reads_it(
    broad, tmp_path, monkeypatch, edit, resize, message
):
    path = broad.save(tmp_path / "model")
    _edit_ranker(path, edit, resize=resize)

    def lightgbm_reached(*args, **kwargs):
        raise AssertionError("LightGBM was given a model text that fails the check")

    monkeypatch.setattr("rectransfer.model.artifacts.lgb.Booster", lightgbm_reached)
    with pytest.raises(rt.IncompatibleArtifactError, match=message) as caught:
        rt.RecModel.load(path)
    assert str(path / RANKER_FILE) in str(caught.value)


_LOAD_AND_SCORE = """
import sys
import numpy as np
import rectransfer as rt
try:
    model = rt.RecModel.load(sys.argv[1])
except rt.IncompatibleArtifactError as err:
    print("refused:", err)
else:
    rows = np.random.default_rng(0).random((1000, len(rt.FEATURE_NAMES)))
    print("scored", model.booster.predict(rows)[:3])
"""


def test_a_ranker_that_crashed_lightgbm_is_refused_and_the_process_lives(broad, tmp_path):
    """Before the check, this model loaded and then killed the process (SIGSEGV) as it scored."""
    path = broad.save(tmp_path / "model")
    _edit_ranker(path, _first_value("left_child", "99"))
    run = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_SCORE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(rt.__file__).parents[1])},
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "refused:" in run.stdout and "left_child" in run.stdout


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["candidates"].update(cooc=10**9), "candidates.cooc"),
        (lambda c: c["candidates"].update(cooc=-1), "candidates.cooc"),
        (lambda c: c["candidates"].update(cooc=2.5), "candidates.cooc"),
        (lambda c: c["candidates"].pop("popular"), "candidates"),
        (lambda c: c["candidates"].update(extra=3), "candidates"),
        (lambda c: c["candidates"].update({k: 0 for k in c["candidates"]}), "0 candidates"),
        (lambda c: c["rounds"].update(broad=-5), "rounds.broad"),
        (lambda c: c["encoder"].update(dim=10**9), "encoder.dim"),
    ],
)
def test_config_values_out_of_bounds_are_refused(broad, tmp_path, change, message):
    path = broad.save(tmp_path / "model")
    _rewrite_config(path, change)
    with pytest.raises(rt.IncompatibleArtifactError, match=message):
        rt.RecModel.load(path)


def _load_in_thread(path) -> tuple[threading.Thread, list[BaseException]]:
    raised: list[BaseException] = []

    def load() -> None:
        try:
            rt.RecModel.load(path)
        except BaseException as err:
            raised.append(err)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=60)
    return thread, raised


@pytest.mark.parametrize("name", [RANKER_FILE, CONFIG_FILE])
def test_a_fifo_in_a_model_directory_is_refused_without_waiting_on_it(broad, tmp_path, name):
    path = broad.save(tmp_path / "model")
    (path / name).unlink()
    os.mkfifo(path / name)
    thread, raised = _load_in_thread(path)
    if thread.is_alive():  # blocked on the FIFO: let it go before failing
        os.close(os.open(path / name, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=30)
        pytest.fail(f"loading waited on the FIFO {name}")
    assert len(raised) == 1 and isinstance(raised[0], rt.IncompatibleArtifactError)
    assert f"{path / name}: is a named pipe (FIFO)" in str(raised[0])


@pytest.mark.parametrize("name", [RANKER_FILE, CONFIG_FILE, CHECKSUM_FILE])
def test_a_symlink_out_of_a_model_directory_is_refused(broad, tmp_path, name):
    """Even to an intact copy of the very file: a link can point anywhere, it is not followed."""
    path = broad.save(tmp_path / "model")
    outside = tmp_path / f"elsewhere-{name}"
    (path / name).rename(outside)
    (path / name).symlink_to(outside)
    with pytest.raises(rt.IncompatibleArtifactError, match="is a symbolic link"):
        rt.RecModel.load(path)


_FUZZ = r"""
import json, random, re, sys
import numpy as np
import rectransfer as rt
from rectransfer.model.artifacts import load_model_files
sys.path.insert(0, sys.argv[3])
from tests.model.test_artifacts import _edit_ranker

path, rounds = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
original = open(path + "/ranker.txt").read()
fields = ["left_child", "right_child", "split_feature", "threshold", "leaf_value", "num_leaves",
          "decision_type", "leaf_count", "shrinkage"]
n = len(rt.FEATURE_NAMES)  # values either side of the last feature index
pool = ["-1", "0", "1", "-31", "-32", "30", "31", str(n - 1), str(n), "-2147483648", "nan", "inf",
        "-inf", "1e308", "", "x", "0.5", "-0.5", "1e-400"]
seen = {"refused": 0, "scored": 0}
rows = np.random.default_rng(0).random((500, n))
for _ in range(rounds):
    trees = [m.start() for m in re.finditer(r"(?m)^Tree=", original)]
    start = rng.choice(trees)
    field = rng.choice(fields)
    line = re.compile(rf"(?m)^{field}=(.*)$").search(original, start)
    tokens = line.group(1).split(" ")
    what = rng.random()
    if what < 0.7:
        tokens[rng.randrange(len(tokens))] = rng.choice(pool + [str(rng.randint(-40, 40))])
    elif what < 0.85 and len(tokens) > 1:
        i, j = rng.sample(range(len(tokens)), 2)  # a swap keeps every value in range
        tokens[i], tokens[j] = tokens[j], tokens[i]
    else:
        tokens.pop() if rng.random() < 0.5 else tokens.append(rng.choice(pool))
    text = original[: line.start(1)] + " ".join(tokens) + original[line.end(1):]
    open(path + "/ranker.txt", "w").write(original)
    _edit_ranker(__import__("pathlib").Path(path), lambda _: text)
    try:
        booster, _ = load_model_files(path)
    except rt.IncompatibleArtifactError:
        seen["refused"] += 1
        continue
    booster.predict(rows)
    seen["scored"] += 1
print(json.dumps(seen))
"""


def test_randomly_edited_rankers_are_refused_or_scored_and_never_kill_the_process(broad, tmp_path):
    """300 consistent edits of one value (tree_sizes and checksums recomputed) in a child process:
    each is refused with IncompatibleArtifactError or loads and scores; the process never dies."""
    path = broad.save(tmp_path / "model")
    root = str(Path(__file__).resolve().parents[2])
    run = subprocess.run(
        [sys.executable, "-c", _FUZZ, str(path), "300", root],
        capture_output=True,
        text=True,
        timeout=120,  # ~15 s; without the check this run did not end within 300 s
        env={**os.environ, "PYTHONPATH": str(Path(rt.__file__).parents[1])},
    )
    assert run.returncode == 0, (run.returncode, run.stderr[-3000:])
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["refused"] + seen["scored"] == 300
    assert seen["refused"] > 50 and seen["scored"] > 20  # both kinds of edit were made
