"""The ``rectransfer`` console script: pretrain, adapt, recommend, demo.

Exit codes: 0 on success; 2 with a one-line ``rectransfer: error: ...`` (no traceback) when the
input or options are bad.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rectransfer.errors import RecTransferError
from rectransfer.evaluation.perf import BENCHMARKS, benchmark_module
from rectransfer.ranking.ranker import BROAD_EARLY_STOPPING_ROUNDS


def _add_encoder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--encoder",
        default="default",
        help="text encoder: 'default' (the packaged all-MiniLM-L6-v2), a local "
        "sentence-transformers model directory, 'onnx-int8:default' or 'onnx-int8:DIR' (the "
        "same model as int8 ONNX: 4-8x faster, cosine ~0.995 to float32), or 'hashing[:DIM]' "
        "(fast, for trials). Default: %(default)s",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="embedding cache folder (default: $RECTRANSFER_CACHE_DIR or ~/.cache/rectransfer)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rectransfer",
        description="Transfer-learnt product recommendations for small retailers.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("pretrain", help="train the broad model on several retailers")
    p.add_argument("--sources", nargs="+", type=Path, required=True, metavar="DIR")
    p.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    p.add_argument(
        "--max-customers",
        type=int,
        default=8_000,
        help="training lists sampled per source (default: %(default)s)",
    )
    p.add_argument(
        "--early-stopping-rounds",
        type=int,
        default=BROAD_EARLY_STOPPING_ROUNDS,
        help="rounds without a better validation score before training stops; larger trains "
        "longer, with more trees to score (default: %(default)s)",
    )
    _add_encoder_options(p)

    from rectransfer.text import training as et

    e = commands.add_parser(
        "pretrain-encoder", help="fine-tune the text encoder on several retailers' product pairs"
    )
    e.add_argument("--sources", nargs="+", type=Path, required=True, metavar="DIR")
    e.add_argument("--out", type=Path, required=True, metavar="ENCODER_DIR")
    e.add_argument(
        "--encoder",
        default="default",
        metavar="BASE",
        help="model to start from: 'default' (the packaged all-MiniLM-L6-v2) or a local "
        "sentence-transformers directory. Default: %(default)s",
    )
    e.add_argument(
        "--freeze-layers",
        type=int,
        default=et.DEFAULT_FREEZE_LAYERS,
        metavar="N",
        help="lowest transformer layers kept frozen, besides the embeddings (default: %(default)s)",
    )
    e.add_argument("--epochs", type=int, default=et.DEFAULT_EPOCHS, help="default: %(default)s")
    e.add_argument(
        "--max-pairs",
        type=int,
        default=et.DEFAULT_MAX_PAIRS,
        help="product-text pairs, spread across sources (default: %(default)s)",
    )
    e.add_argument(
        "--work-dir", type=Path, default=None, help="checkpoints (default: ENCODER_DIR.work)"
    )
    e.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: one per core)"
    )
    e.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")

    a = commands.add_parser("adapt", help="fine-tune a broad model to one retailer (with guard)")
    a.add_argument("--base", type=Path, required=True, metavar="MODEL_DIR")
    a.add_argument("--retailer", type=Path, required=True, metavar="DIR")
    a.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR")
    a.add_argument("--name", default=None, help="retailer name (default: the folder's name)")
    a.add_argument(
        "--tune-encoder",
        type=Path,
        default=None,
        metavar="ENCODER_DIR",
        help="also tune the text encoder on this retailer's product pairs into this new folder; "
        "kept only if the guard's validation figures improve with it",
    )
    _add_encoder_options(a)

    r = commands.add_parser("recommend", help="export top-K recommendations to Parquet")
    r.add_argument("--model", type=Path, required=True, metavar="MODEL_DIR")
    r.add_argument("--retailer", type=Path, required=True, metavar="DIR")
    r.add_argument("--out", type=Path, required=True, metavar="EXPORT_ROOT")
    r.add_argument("--k", type=int, default=20, help="items per customer (default: %(default)s)")
    r.add_argument("--run-date", default=None, metavar="YYYY-MM-DD", help="default: today (UTC)")
    r.add_argument("--name", default=None, help="retailer name (default: the folder's name)")
    r.add_argument(
        "--keep-bought", action="store_true", help="do not remove items customers already bought"
    )
    _add_encoder_options(r)

    b = commands.add_parser(
        "benchmark", help="every model against the baselines on one target retailer"
    )
    b.add_argument(
        "--base", type=Path, required=True, metavar="MODEL_DIR", help="pretrained on other shops"
    )
    b.add_argument("--target", type=Path, required=True, metavar="DIR")
    b.add_argument("--fractions", type=_floats, default=[1.0, 0.25, 0.1], metavar="F,F,...")
    b.add_argument("--seeds", type=int, default=3, help="seeds per fraction below 1 (default: 3)")
    b.add_argument("--k", type=_ints, default=[10, 20, 50], metavar="K,K,...")
    b.add_argument("--out", type=Path, required=True, metavar="RESULTS_JSON")
    b.add_argument(
        "--cold-customers",
        action="store_true",
        help="instead: hide 20%% of the customers with text and recommend from their text alone",
    )
    b.add_argument("--plot", type=Path, default=None, metavar="FILE.png")
    b.add_argument(
        "--tune-encoder",
        action="store_true",
        help="add the rows of adapt's per-retailer encoder step (minutes per fraction and seed)",
    )
    b.add_argument("--name", default=None, help="retailer name (default: the folder's name)")
    _add_encoder_options(b)

    bench = commands.add_parser("bench", help="performance benchmarks (each writes a JSON file)")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    for name in BENCHMARKS:
        module = benchmark_module(name)
        sub = benches.add_parser(name, help=module.HELP)
        module.add_arguments(sub)
        sub.add_argument("--out", type=Path, required=True, metavar="RESULTS_JSON")

    d = commands.add_parser(
        "demo", help="pretrain on the sample source shops, adapt to the target, export"
    )
    d.add_argument("--workdir", type=Path, default=Path("demo_output"), metavar="DIR")
    d.add_argument(
        "--data", type=Path, default=None, metavar="DIR", help="default: the bundled sample_data"
    )
    _add_encoder_options(d)
    return parser


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected numbers like 1.0,0.1, got {text!r}") from err


def _ints(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected integers like 10,20, got {text!r}") from err


def _encoder(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from rectransfer.text.load import load_encoder

    return load_encoder(args.encoder, cache_dir=args.cache_dir)


def _run(args: argparse.Namespace) -> None:
    import rectransfer as rt

    if args.command == "pretrain":
        model = rt.pretrain(
            args.sources,
            encoder=_encoder(args),
            max_customers_per_retailer=args.max_customers,
            random_state=args.seed,
            early_stopping_rounds=args.early_stopping_rounds,
        )
        path = model.save(args.out)
        print(f"broad model {model.model_version} trained on {model.config.trained_on} -> {path}")
    elif args.command == "pretrain-encoder":
        import time

        from rectransfer.text.training import pretrain_encoder, read_metadata

        start = time.perf_counter()
        path = pretrain_encoder(
            args.sources,
            args.out,
            base=args.encoder,
            freeze=args.freeze_layers,
            epochs=args.epochs,
            max_pairs=args.max_pairs,
            work_dir=args.work_dir,
            threads=args.threads,
            random_state=args.seed,
            show_progress=True,
        )
        info = read_metadata(path)
        print(
            f"encoder fine-tuned on {info['pairs']} pairs from {info['sources']} "
            f"({info['epochs']} epoch(s), {info['frozen']['layers']} layers frozen) -> {path} "
            f"in {time.perf_counter() - start:.0f} s"
        )
    elif args.command == "adapt":
        base = rt.RecModel.load(args.base, encoder=_encoder(args))
        data = rt.RetailerData.load(args.retailer, name=args.name)
        model = rt.adapt(base, data, tune_encoder_to=args.tune_encoder, random_state=args.seed)
        path = model.save(args.out)
        assert model.guard is not None
        print(model.guard.table())
        if model.config.encoder_tuning is not None:
            print(f"encoder tuning: {model.config.encoder_tuning.reason}")
        print(f"model {model.model_version} for {data.name} -> {path}")
    elif args.command == "recommend":
        from rectransfer.serving.export import check_retailer_name

        model = rt.RecModel.load(args.model, encoder=_encoder(args))
        data = rt.RetailerData.load(args.retailer, name=args.name)
        check_retailer_name(data.name)  # before scoring: the name becomes the partition folder
        counts = {"rows": 0, "customers": 0}

        def counted(chunks):  # type: ignore[no-untyped-def]
            for chunk in chunks:
                counts["rows"] += chunk.height
                counts["customers"] += chunk["user_id"].n_unique()
                yield chunk

        # Chunks of customers stream into the staged file: memory stays flat at any size.
        path = rt.write_recommendation_chunks(
            counted(
                rt.iter_recommendations(model, data, k=args.k, exclude_bought=not args.keep_bought)
            ),
            args.out,
            retailer=data.name,
            run_date=args.run_date,
            model_version=model.model_version,
        )
        print(
            f"{counts['rows']} recommendations for {counts['customers']} customers of "
            f"{data.name} -> {path}"
        )
        from rectransfer.orchestration.report import stock_warning

        warning = stock_warning(data)
        if warning is not None:
            print(f"rectransfer: warning: {data.name}: {warning}", file=sys.stderr)
    elif args.command == "benchmark":
        from rectransfer.evaluation.benchmark import markdown_summary, run_benchmark, write_report
        from rectransfer.evaluation.cold_customers import run_cold_customers

        base = rt.RecModel.load(args.base, encoder=_encoder(args))
        target = rt.RetailerData.load(args.target, name=args.name)
        if args.cold_customers:
            cold = run_cold_customers(base, target, ks=args.k, seed=args.seed)
            write_report(cold, args.out)
            for row in cold["results"]:
                print(", ".join(f"{k}: {v}" for k, v in row.items()))
            print(f"text-path weights: {cold['text_blend']['reason']}")
            print(f"results -> {args.out}")
            return
        report = run_benchmark(
            base,
            target,
            fractions=args.fractions,
            seeds=args.seeds,
            ks=args.k,
            tune_encoder=args.tune_encoder,
        )
        write_report(report, args.out, plot=args.plot)
        print(markdown_summary(report))
        print(f"results -> {args.out}")
    elif args.command == "bench":
        from rectransfer.evaluation.benchmark import write_report

        result = benchmark_module(args.bench).run(args)
        write_report(result, args.out)
        print(json.dumps(result, indent=2))
        print(f"results -> {args.out}")
    elif args.command == "demo":
        from rectransfer.demo import run_demo

        run_demo(args.workdir, data_dir=args.data, encoder=_encoder(args), random_state=args.seed)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        _run(args)
    except RecTransferError as err:
        message = " ".join(str(err).split())
        print(f"rectransfer: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
