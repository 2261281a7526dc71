"""Crashes and reruns: killed writers, reruns, a failing retailer in the nightly run, retries.

The kill tests drive ``tests/crash_writer.py``: one helper process imports the package once and,
per round, forks a writer and kills it mid-write, alternately at a seeded random byte of a file
and with SIGKILL at a seeded random time (``RECTRANSFER_CRASH_SEED`` changes the seed). The
default run does a few rounds of each; the ``slow`` variants do many (``pytest -m slow``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

import rectransfer as rt
from rectransfer.model.artifacts import CONFIG_FILE, RANKER_FILE
from rectransfer.model.recmodel import RecModel
from rectransfer.serving.export import PART_FILE, STAGING_FOLDER, partition_path, staging_path
from rectransfer.text.embedding_cache import EmbeddingCache
from rectransfer.utils import atomic as _atomic
from rectransfer.utils.atomic import leftovers
from tests import crash_writer as writer
from tests.conftest import ROOT, make_shop, write_shop

SEED = int(os.environ.get("RECTRANSFER_CRASH_SEED", "20261123"))
ROUNDS = [pytest.param(3, id="3-rounds"), pytest.param(40, id="40-rounds", marks=pytest.mark.slow)]
HELPER = Path(__file__).with_name("crash_writer.py")


# ----------------------------------------------------------------------------------------------
# The kill server


@pytest.fixture(scope="module")
def kill() -> Iterator[Callable[..., dict[str, Any]]]:
    """``kill(kind, workdir, round, max_delay)``: fork a writer, SIGKILL it mid-write."""
    process = subprocess.Popen(
        [sys.executable, str(HELPER), str(SEED)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdin is not None and process.stdout is not None

    def request(kind: str, workdir: Path, round: int, max_delay: float, max_bytes: int) -> dict:
        line: dict[str, Any] = {"kind": kind, "workdir": str(workdir), "round": round}
        if round % 2 == 0:
            # Killed mid-file at a random byte, whatever the speed of the machine.
            line["max_bytes"] = max_bytes
        else:
            # Killed at a random time after one complete write, so that kills also hit a writer
            # replacing its own output: mid-file, between fsync and rename, mid-compaction.
            line.update(max_delay=max_delay, after_writes=1)
        process.stdin.write(json.dumps(line) + "\n")
        process.stdin.flush()
        reply = json.loads(process.stdout.readline())
        assert "error" not in reply, f"{reply} (seed {SEED})"
        return reply

    yield request
    process.stdin.close()
    process.wait(timeout=30)
    process.stdout.close()


def _where(seed_round: int) -> str:
    return f"round {seed_round}, seed {SEED}"


# ----------------------------------------------------------------------------------------------
# Export


EXPORT_DATE = dt.date.fromisoformat(writer.RUN_DATE)


@pytest.fixture(scope="module")
def export_versions() -> dict[str, pl.DataFrame]:
    return {
        "previous": writer.version_frame(-1),
        "v0": writer.version_frame(0),
        "v1": writer.version_frame(1),
    }


def check_export(root: Path, versions: dict[str, pl.DataFrame], where: str) -> str:
    """The partition holds exactly one complete version, and readers see nothing else."""
    part = partition_path(root, writer.RETAILER, EXPORT_DATE) / PART_FILE
    assert sorted(p.name for p in part.parent.iterdir()) == [PART_FILE], where
    frame = pl.read_parquet(part)
    (version,) = frame["model_version"].unique().to_list()
    assert frame.drop("model_version").equals(versions[version]), where
    visible = [
        p
        for p in root.rglob("*")
        if p.is_file() and STAGING_FOLDER not in p.relative_to(root).parts
    ]
    assert visible == [part], where
    scanned = pl.scan_parquet(root / "**" / "*.parquet", hive_partitioning=True).collect()
    assert scanned.height == writer.EXPORT_ROWS, where
    return str(version)


@pytest.mark.parametrize("rounds", ROUNDS)
def test_a_killed_export_leaves_the_previous_partition_intact_and_no_temporary_where_readers_look(
    kill, export_versions, tmp_path, rounds
):
    root = tmp_path / "exports"
    rt.write_recommendations(
        export_versions["previous"],
        root,
        retailer=writer.RETAILER,
        run_date=EXPORT_DATE,
        model_version="previous",
    )
    size = min(  # the size of the smallest file a write makes: every kill lands inside one
        rt.write_recommendations(
            export_versions[v], tmp_path / "sizes", retailer=v, model_version=v
        )
        .stat()
        .st_size
        for v in export_versions
    )
    seen, completed = set(), 0
    for r in range(rounds):
        completed += kill("export", tmp_path, r, max_delay=0.5, max_bytes=size)["completed"]
        seen.add(check_export(root, export_versions, _where(r)))
    assert completed > 0 and seen & {"v0", "v1"}, "no kill ever hit a writer replacing a file"

    # The next write sweeps what the killed writers staged.
    rt.write_recommendations(
        export_versions["v0"], root, retailer="other", run_date=EXPORT_DATE, model_version="v0"
    )
    assert list(staging_path(root).iterdir()) == []


def dead_pid() -> int:
    """The PID of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def token_of(pid: int) -> str:
    host, _, rest = _atomic.owner_token().split("-", 2)
    return f"{host}-{pid}-{rest}"


def test_staged_files_of_a_dead_writer_are_swept_and_a_live_writers_are_kept(tmp_path):
    recs = writer.version_frame(0, rows=20)
    staging = staging_path(tmp_path)
    staging.mkdir()
    dead = staging / f"shop_2026-01-01_{token_of(dead_pid())}.tmp"
    live = staging / f"shop_2026-01-01_{token_of(os.getppid())}.tmp"
    foreign = staging / "shop_2026-01-01_0123abcd-1-0123456789abcdef.tmp"  # another host
    for path in (dead, live, foreign):
        path.write_bytes(b"PAR1 half a file")
    legacy = partition_path(tmp_path, "shop", dt.date(2026, 1, 1)) / f".{PART_FILE}.tmp-0a1b2c"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"PAR1 left inside the partition by an earlier version")

    rt.write_recommendations(
        recs, tmp_path, retailer="shop", run_date="2026-01-01", model_version="v"
    )

    assert sorted(p.name for p in staging.iterdir()) == sorted([live.name, foreign.name])
    assert [p.name for p in legacy.parent.iterdir()] == [PART_FILE]
    stale = _atomic.STALE_SECONDS + 60
    os.utime(foreign, (foreign.stat().st_atime - stale, foreign.stat().st_mtime - stale))
    rt.write_recommendations(
        recs, tmp_path, retailer="shop", run_date="2026-01-02", model_version="v"
    )
    assert [p.name for p in staging.iterdir()] == [live.name]


def test_a_failed_first_write_leaves_no_partition_folder(tmp_path, monkeypatch):
    def broken(filename, *args, **kwargs):
        Path(filename).write_bytes(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr("fastparquet.write", broken)
    with pytest.raises(OSError, match="disk full"):
        rt.write_recommendations(
            writer.version_frame(0, rows=5), tmp_path, retailer="s", model_version="v"
        )
    assert [p.name for p in tmp_path.iterdir()] == [STAGING_FOLDER]
    assert list(staging_path(tmp_path).iterdir()) == []


# ----------------------------------------------------------------------------------------------
# Model directories


@pytest.fixture
def model_workdir(broad, tmp_path) -> Path:
    broad.save(tmp_path / "source")
    previous = broad.config.model_copy(update={"random_state": -1})
    RecModel(broad.booster, previous).save(tmp_path / "model")
    return tmp_path


def read_continuously(path: Path, stop: threading.Event, seen: list[object]) -> None:
    while not stop.is_set():
        try:
            seen.append(RecModel.load(path).config.random_state)
        except Exception as err:  # recorded, and the test fails on it
            seen.append(err)


@pytest.mark.parametrize("rounds", ROUNDS)
def test_a_killed_model_save_leaves_a_complete_model_and_readers_never_find_none(
    kill, broad, model_workdir, rounds
):
    target = model_workdir / "model"
    size = max(p.stat().st_size for p in target.iterdir())  # the largest file a save writes
    completed = 0
    for r in range(rounds):
        stop, seen = threading.Event(), []
        reader = threading.Thread(target=read_continuously, args=(target, stop, seen))
        reader.start()
        try:
            reply = kill("model", model_workdir, r, max_delay=0.3, max_bytes=size)
            completed += reply["completed"]
        finally:
            stop.set()
            reader.join()
        errors = [s for s in seen if isinstance(s, BaseException)]
        assert not errors, f"a reader failed during a save ({_where(r)}): {errors[0]!r}"
        assert seen, "the reader never read"
        after = RecModel.load(target)  # what a later run finds: complete, never mistaken
        assert after.model_version == broad.model_version, _where(r)
        assert after.config.random_state >= -1, _where(r)
        assert all(p.name.startswith(".model.") for p in leftovers(target))
    assert completed > 0

    broad.save(target)  # the next save sweeps what killed saves left
    assert leftovers(target) == []
    assert sorted(p.name for p in model_workdir.iterdir()) == ["model", "source"]


def test_after_every_step_of_a_save_the_path_holds_a_complete_model(broad, tmp_path, monkeypatch):
    """Where directories can be exchanged atomically (Linux), a reader that looks at any instant
    of a save finds the old model or the new one: check after each rename, exchange and delete."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    if not _atomic.exchange(tmp_path / "a", tmp_path / "b"):
        pytest.skip("this platform or file system cannot exchange directories atomically")
    target = tmp_path / "model"
    old = broad.config.model_copy(update={"random_state": 1})
    RecModel(broad.booster, old).save(target)
    states = [RecModel.load(target).config.random_state]

    def observed(function):
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            states.append(RecModel.load(target).config.random_state)  # raises if there is none
            return result

        return wrapper

    monkeypatch.setattr(os, "rename", observed(os.rename))
    monkeypatch.setattr(os, "replace", observed(os.replace))
    monkeypatch.setattr(_atomic, "exchange", observed(_atomic.exchange))
    monkeypatch.setattr(_atomic, "remove", observed(_atomic.remove))
    new = broad.config.model_copy(update={"random_state": 2})
    RecModel(broad.booster, new).save(target)
    assert len(states) >= 3  # before, after the swap, after the old one is deleted
    assert states[0] == 1 and states[-1] == 2 and sorted(states) == states


@pytest.mark.parametrize(
    "saves",
    [pytest.param(100, id="100-saves"), pytest.param(1500, id="1500", marks=pytest.mark.slow)],
)
def test_readers_during_saves_get_one_complete_model_never_a_mix_or_none(broad, tmp_path, saves):
    target = broad.save(tmp_path / "model")
    done, seen = threading.Event(), []

    def save_repeatedly() -> None:
        try:
            for n in range(saves):
                config = broad.config.model_copy(update={"random_state": n})
                RecModel(broad.booster, config).save(target)
        finally:
            done.set()

    saver = threading.Thread(target=save_repeatedly)
    saver.start()
    read_continuously(target, done, seen)
    saver.join()
    errors = [s for s in seen if isinstance(s, BaseException)]
    assert not errors, f"{len(errors)} of {len(seen)} reads failed, e.g. {errors[0]!r}"
    assert len(seen) > 10
    assert RecModel.load(target).config.random_state == saves - 1
    assert leftovers(target) == []


def test_leftovers_of_killed_saves_are_never_read_and_are_swept(broad, tmp_path):
    target = broad.save(tmp_path / "model")
    # A killed save: a complete new directory that never got renamed in, and a half-written one.
    complete = tmp_path / f".model.tmp-{token_of(dead_pid())}"
    broad.save(complete)
    half = tmp_path / f".model.tmp-{token_of(dead_pid())}"
    half.mkdir()
    (half / CONFIG_FILE).write_text('{"format_version": 1, "kind": "bro')
    live = tmp_path / f".model.tmp-{token_of(os.getppid())}"
    live.mkdir()
    legacy = tmp_path / ".model.old-0123456789abcdef0123456789abcdef"
    legacy.mkdir()

    assert RecModel.load(target).model_version == broad.model_version
    assert leftovers(target) == sorted([complete, half, live, legacy])

    broad.save(target)
    assert leftovers(target) == sorted([live, legacy])  # a live writer's and a fresh one's stay
    stale = _atomic.STALE_SECONDS + 60
    os.utime(legacy, (legacy.stat().st_atime - stale, legacy.stat().st_mtime - stale))
    broad.save(target)
    assert leftovers(target) == [live]


def test_without_an_atomic_exchange_the_old_model_is_kept_until_the_new_one_is_in(
    broad, tmp_path, monkeypatch
):
    target = broad.save(tmp_path / "model")
    monkeypatch.setattr(_atomic, "exchange", lambda a, b: False)
    renames: list[tuple[str, str]] = []
    real_rename = os.rename

    def rename(src, dst):
        renames.append((Path(src).name, Path(dst).name))
        if len(renames) == 2:
            raise OSError("crash between the two renames")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="between the two renames"):
        broad.save(target)
    monkeypatch.setattr(os, "rename", real_rename)
    assert renames[0][0] == "model" and renames[0][1].startswith(".model.old-")
    assert RecModel.load(target).model_version == broad.model_version  # the old one was put back
    assert leftovers(target) == []
    broad.save(target)  # and a save without failure goes through
    assert leftovers(target) == []


def test_a_save_that_would_not_load_back_is_not_published(broad, tmp_path, monkeypatch):
    target = broad.save(tmp_path / "model")
    before = (target / RANKER_FILE).read_bytes()
    monkeypatch.setattr("rectransfer.model.artifacts.config_json", lambda config: "{}")
    with pytest.raises(rt.IncompatibleArtifactError):
        broad.save(target)
    assert (target / RANKER_FILE).read_bytes() == before
    assert leftovers(target) == []


def test_undefined_guard_figures_survive_a_save(broad, tmp_path):
    """One validation customer has no standard error (NaN); the saved model still loads."""
    shop = make_shop("solo", seed=3, n_users=1)
    model = rt.adapt(broad, shop)
    assert model.guard is not None and np.isnan(model.guard.stderr["broad"])
    loaded = RecModel.load(model.save(tmp_path / "solo"))
    assert loaded.guard is not None and np.isnan(loaded.guard.stderr["broad"])
    json.loads((tmp_path / "solo" / CONFIG_FILE).read_text())  # still standard JSON


# ----------------------------------------------------------------------------------------------
# The embedding cache


def check_cache(workdir: Path, history: list[tuple[int, int]], where: str) -> None:
    """Every completed batch is found with its exact vectors; nothing else is ever wrong."""
    cache = EmbeddingCache(workdir / "cache")  # a later run; a corrupt shard would warn (error)
    for round_number, completed in history:
        first = round_number * writer.BATCHES_PER_ROUND
        for batch in range(first, first + completed + 1):  # + the batch being written
            keys = writer.cache_keys(batch)
            found, vectors = cache.get_many(writer.CACHE_FINGERPRINT, keys)
            expected = np.stack([writer.vector_of(k) for k in keys])
            if found.any():  # (with nothing stored yet, vectors have no columns)
                assert np.array_equal(vectors[found], expected[found]), where
            if batch < first + completed:
                assert found.all(), f"a completed batch was lost ({where})"


@pytest.mark.parametrize("rounds", ROUNDS)
def test_a_killed_cache_writer_never_leaves_a_shard_taken_for_complete(kill, tmp_path, rounds):
    history: list[tuple[int, int]] = []
    for r in range(rounds):
        shard = writer.CACHE_BATCH * (32 + 4 * writer.CACHE_DIM)  # a little under one shard
        reply = kill("cache", tmp_path, r, max_delay=0.3, max_bytes=shard)
        history.append((r, reply["completed"]))
        check_cache(tmp_path, history, _where(r))
    assert sum(c for _, c in history) > 0
    folder = tmp_path / "cache" / "embeddings" / writer.CACHE_FINGERPRINT
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]  # swept on open


# ----------------------------------------------------------------------------------------------
# Reruns


PIPELINE = """
import sys
import rectransfer as rt
from rectransfer.text.load import load_encoder

def run(retailer, base, out, seed):
    encoder = load_encoder("hashing:64", cache_dir=f"{out}/cache")
    data = rt.RetailerData.load(retailer)
    model = rt.adapt(rt.RecModel.load(base, encoder=encoder), data, random_state=seed)
    model.save(f"{out}/model")
    model = rt.RecModel.load(f"{out}/model", encoder=encoder)
    recs = rt.recommend(model, rt.RetailerData.load(retailer), k=10)
    return rt.write_recommendations(
        recs, f"{out}/exports", retailer=data.name, run_date="2026-11-23",
        model_version=model.model_version,
    )

if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
"""


def test_a_rerun_with_the_same_inputs_model_and_seed_gives_the_same_rows(broad, tmp_path):
    """In this process and in a fresh one with another hash seed: identical, row for row."""
    retailer = write_shop(make_shop("rerun", seed=17, n_users=60), tmp_path / "rerun")
    base = broad.save(tmp_path / "broad")
    namespace: dict[str, Any] = {"__name__": "pipeline"}
    exec(PIPELINE, namespace)  # the very same code the other process runs
    first = Path(namespace["run"](retailer, base, tmp_path / "first", 7))
    again = Path(namespace["run"](retailer, base, tmp_path / "first", 7))  # rerun, same place
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    subprocess.run(
        [sys.executable, str(script), str(retailer), str(base), str(tmp_path / "second"), "7"],
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        cwd=tmp_path,
    )
    second = tmp_path / "second" / first.relative_to(tmp_path / "first")

    rows = pl.read_parquet(first)
    assert rows.height > 0 and first == again
    assert pl.read_parquet(second).equals(rows)
    model = RecModel.load(tmp_path / "first" / "model")
    assert model.guard is not None and model.guard.validation_customers >= 20  # really adapted
    assert RecModel.load(tmp_path / "second" / "model").model_version == model.model_version
    assert [p.name for p in first.parent.iterdir()] == [PART_FILE]  # replaced, not added


# ----------------------------------------------------------------------------------------------
# The nightly flow: one corrupt retailer among good ones
# (more flow runs in tests/orchestration/test_flows.py)


@pytest.fixture
def nightly_with_its_report(monkeypatch, prefect_harness):
    """flows.nightly with its report captured.

    The flow fans its tasks out (one per retailer, one per customer chunk), so it runs on the
    session's temporary Prefect server (conftest.py; ~20 s to start, shared with test_flows.py).
    """
    import flows.nightly as module

    reports: list[str] = []
    monkeypatch.setattr(
        module, "create_markdown_artifact", lambda **kwargs: reports.append(kwargs["markdown"])
    )
    return module, reports


def test_nightly_with_one_corrupt_retailer_exports_the_others_reports_it_and_fails(
    nightly_with_its_report, broad, tmp_path
):
    module, reports = nightly_with_its_report
    retailers = tmp_path / "retailers"
    shops = {name: make_shop(name, seed=i, n_users=25) for i, name in enumerate(["alpha", "gamma"])}
    for name, shop in shops.items():
        write_shop(shop, retailers / name)
    write_shop(make_shop("beta", seed=9, n_users=25), retailers / "beta")
    items = retailers / "beta" / "items.parquet"
    items.write_bytes(items.read_bytes()[:100])  # truncated by a failed copy
    params = module.NightlyParams(
        retailers_root=str(retailers),
        base=str(broad.save(tmp_path / "broad")),
        models_root=str(tmp_path / "models"),
        export_root=str(tmp_path / "exports"),
        k=4,
        run_date="2026-11-23",
        encoder="hashing:64",
    )

    def run_nightly() -> str:
        with pytest.raises(rt.RecTransferError) as failed:
            module.nightly.fn(**params.model_dump())
        return str(failed.value)

    message = run_nightly()
    assert "1 of 3 retailers failed" in message
    assert "beta: SchemaError: items.parquet: could not be read as a Parquet file" in message
    (report,) = reports
    assert "2 of 3 retailers succeeded" in report
    assert "| beta | failed |" in report and "**beta**: SchemaError: items.parquet" in report
    exports = tmp_path / "exports"
    assert not (exports / "retailer=beta").exists()
    first = {}
    for name, shop in shops.items():
        path = partition_path(exports, name, dt.date(2026, 11, 23)) / PART_FILE
        first[name] = pl.read_parquet(path)
        assert first[name].height == 4 * shop.n_users
        assert f"| {name} | ok |" in report

    # A rerun for the same date replaces each partition: the same rows, never twice as many.
    run_nightly()
    for name in shops:
        folder = partition_path(exports, name, dt.date(2026, 11, 23))
        assert [p.name for p in folder.iterdir()] == [PART_FILE]
        assert pl.read_parquet(folder / PART_FILE).equals(first[name])
    scanned = pl.scan_parquet(exports / "**" / "*.parquet", hive_partitioning=True).collect()
    assert scanned.height == sum(4 * shop.n_users for shop in shops.values())


# ----------------------------------------------------------------------------------------------
# Retries


def test_io_tasks_retry_with_backoff_on_transient_errors_only_and_compute_never():
    from prefect import Task
    from prefect.states import Failed

    from rectransfer.orchestration import tasks

    io = {
        "load_retailer",
        "load_model_task",
        "save_model_task",
        "export_task",
        "export_chunks_task",
        "isolated_retailer_task",  # a whole retailer, its loading, saving and writing included
    }
    found = {name: t for name, t in vars(tasks).items() if isinstance(t, Task)}
    assert io < set(found)
    for name, task in found.items():
        if name in io:
            delays = list(task.retry_delay_seconds)
            assert task.retries == len(delays) >= 2, name
            assert delays == sorted(delays) and delays[-1] > delays[0] > 0, name  # backoff
            condition = task.retry_condition_fn
            assert condition is not None
            assert condition(task, None, Failed(data=OSError("share unavailable")))
            assert condition(task, None, Failed(data=TimeoutError("slow store")))
            assert not condition(task, None, Failed(data=rt.SchemaError("bad file")))
            assert not condition(task, None, Failed(data=rt.IncompatibleArtifactError("x")))
        else:
            assert task.retries == 0, f"{name} is compute and must not retry"
