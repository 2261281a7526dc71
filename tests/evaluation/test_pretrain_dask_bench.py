"""Smoke test of ``bench pretrain --runner dask`` on tiny generated sources (no figures)."""

import json

import pytest

from rectransfer.cli import main
from tests.conftest import import_extra


def test_bench_pretrain_on_dask_reports_both_runs_and_every_workers_peak(tmp_path):
    import_extra("distributed", "dask")
    out = tmp_path / "pretrain-dask.json"
    argv = ["bench", "pretrain", "--runner", "dask", "--generate", "2", "--customers", "150"]
    argv += ["--items", "120", "--max-rounds", "10", "--encoder", "hashing:32"]
    assert main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["sources"] == ["gen000", "gen001"]
    assert result["one_process"]["seconds"] > 0 and result["dask"]["seconds"] > 0
    assert len(result["dask"]["peak_rss_gb_per_worker"]) == result["workers"] == 2
    assert all(gb > 0 for gb in result["dask"]["peak_rss_gb_per_worker"])
    # every list is in the rounds sample at this size: the rounds are one-process pretraining's
    assert result["dask"]["rounds"] == result["one_process"]["rounds"]
    assert 0 <= result["held_out_ndcg@10"]["dask"] <= 1


@pytest.mark.parametrize("runner", ["local", "dask"])
def test_bench_pretrain_without_sources_says_how_to_give_them(runner, tmp_path, capsys):
    out = tmp_path / "unused.json"
    assert main(["bench", "pretrain", "--runner", runner, "--out", str(out)]) == 2
    assert "--sources DIR" in capsys.readouterr().err and not out.exists()


def test_sources_too_many_for_one_process_are_reported_as_refused(tmp_path, monkeypatch):
    from rectransfer.evaluation.perf import pretrain_dask
    from rectransfer.transfer import sizing

    size = ["--customers", "60", "--items", "40"]
    sources = pretrain_dask._main(["generate", str(tmp_path / "sources"), "2", *size])["sources"]
    monkeypatch.setattr(sizing, "MAX_ONE_PROCESS_TRAINING_BYTES", 1_000)
    argv = ["one-process", str(tmp_path / "one"), "--encoder", "hashing:32", "--sources"]
    result = pretrain_dask._main([*argv, *sources])
    assert "Dask" in result["refused"] and not (tmp_path / "one").exists()
