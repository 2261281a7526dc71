"""The ``rectransfer`` console script: check, pretrain, adapt, recommend, benchmark, loso,
source-curve, next-item-probe, demo.

Exit codes: 0 on success; 2 with a one-line ``rectransfer: error: ...`` (no traceback) when the
input or options are bad, a destination is refused, or the environment fails (a full disk, a
read-only folder, a name too long). Destinations are checked before any data is read.

One module for the console script: the parser, the checks of its options and destinations, and
the commands that read those options belong together.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from rectransfer.data.columns import Columns
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import DataQualityWarning, RecTransferError
from rectransfer.evaluation.next_item_model import NextItemTraining
from rectransfer.evaluation.perf import BENCHMARKS, benchmark_module
from rectransfer.ranking.ranker import BROAD_EARLY_STOPPING_ROUNDS
from rectransfer.transfer.pretrain import DEFAULT_VIRTUAL_SHOPS, MAX_TRAINING_NEGATIVES
from rectransfer.utils.progress import LOGGER, log_to_stderr, progress
from rectransfer.utils.versions import package_version


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown by the formatter, never typed into a help string; none for required
    options, flags and options without a default."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or any(action.default is v for v in (None, False, argparse.SUPPRESS)):
            return action.help
        return super()._get_help_string(action)


def _add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the result, warnings and errors (no stages or progress)",
    )


def _add_encoder_options(parser: argparse.ArgumentParser, *, model_given: bool = False) -> None:
    parser.add_argument(
        "--encoder",
        default=None if model_given else "default",
        help=(
            "text encoder: 'default' (the packaged all-MiniLM-L6-v2), a local "
            "sentence-transformers model directory, 'onnx-int8:default' or 'onnx-int8:DIR' (the "
            "same model as int8 ONNX: 4-8x faster, cosine ~0.995 to float32), or 'hashing[:DIM]' "
            "(fast, for trials)"
        )
        + (". Default: the encoder the model was trained with" if model_given else ""),
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="embedding cache folder (default: $RECTRANSFER_CACHE_DIR or ~/.cache/rectransfer)",
    )
    parser.add_argument(
        "--random-state", "--seed", dest="seed", type=int, default=0, help="random seed"
    )


def build_parser() -> argparse.ArgumentParser:
    from rectransfer.text import training as et

    parser = argparse.ArgumentParser(
        prog="rectransfer",
        description="Transfer-learnt product recommendations for small retailers.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            formatter_class=_HelpFormatter,
        )
        _add_quiet(sub)
        return sub

    c = command("check", "validate a retailer folder against the data contract, without training")
    c.add_argument("folder", type=Path, metavar="DIR", help="the retailer's folder")
    c.add_argument("--name", default=None, help="retailer name (default: the folder's name)")

    p = command("pretrain", "train the broad model on several retailers")
    p.add_argument(
        "--sources", nargs="+", type=Path, required=True, metavar="DIR", help="retailer folders"
    )
    p.add_argument(
        "--out", type=Path, required=True, metavar="MODEL_DIR", help="where the model is saved"
    )
    p.add_argument(
        "--max-customers-per-retailer",
        "--max-customers",
        dest="max_customers",
        type=int,
        default=8_000,
        help="training lists sampled per source",
    )
    p.add_argument(
        "--early-stopping-rounds",
        type=int,
        default=BROAD_EARLY_STOPPING_ROUNDS,
        help="rounds without a better validation score before training stops; larger trains "
        "longer, with more trees to score",
    )
    _add_virtual_shops_option(p)
    _add_max_negatives_option(p)
    p.add_argument(
        "--weight-towards",
        type=Path,
        default=None,
        metavar="DIR",
        help="pretrain for this retailer: each source weighted by how much of its catalogue the "
        "source's products resemble (only its product text is read; default: sources alike; on "
        "the development loop it did not beat equal weights)",
    )
    _add_encoder_options(p)

    lo = command(
        "loso", "leave-one-source-out: pretrain on the others, benchmark each held-out source"
    )
    lo.add_argument("--sources", nargs="+", type=Path, required=True, metavar="DIR")
    lo.add_argument("--out", type=Path, required=True, metavar="RESULTS_JSON")
    lo.add_argument("--table", type=Path, default=None, metavar="FILE.md", help="markdown summary")
    lo.add_argument(
        "--customers",
        type=int,
        default=5_000,
        help="customers sampled from the held-out source; they play f = 1 (default: %(default)s)",
    )
    lo.add_argument("--fractions", type=_floats, default=[1.0, 0.1], metavar="F,F,...")
    lo.add_argument("--seeds", type=int, default=3, help="seeds per fraction below 1 (default: 3)")
    lo.add_argument("--k", type=_ints, default=[10, 20, 50], metavar="K,K,...")
    lo.add_argument(
        "--held-out", type=_names, default=None, metavar="NAME,...", help="default: every source"
    )
    lo.add_argument(
        "--resume", action="store_true", help="keep the finished folds of an earlier --out file"
    )
    _add_ship_rules_option(lo)
    lo.add_argument(
        "--weight-sources",
        action="store_true",
        help="pretrain each fold for its held-out source: the other sources weighted by how close "
        "their catalogues are to its catalogue in text space (as pretrain --weight-towards)",
    )
    _add_study_pretrain_options(lo)
    _add_encoder_options(lo)

    sc = command("source-curve", "zero-shot transfer against the number of sources pretrained on")
    sc.add_argument("--sources", nargs="+", type=Path, required=True, metavar="DIR")
    sc.add_argument(
        "--targets",
        nargs="+",
        type=Path,
        required=True,
        metavar="DIR",
        help="unseen retailers to benchmark",
    )
    sc.add_argument("--out", type=Path, required=True, metavar="RESULTS_JSON")
    sc.add_argument("--table", type=Path, default=None, metavar="FILE.md", help="markdown table")
    sc.add_argument(
        "--counts", type=_ints, default=[1, 2, 4, 6], metavar="N,N,...", help="sources per model"
    )
    sc.add_argument("--orders", type=int, default=1, help="seeded orders of the sources")
    sc.add_argument(
        "--resume",
        action="store_true",
        help="keep the points of an earlier --out file (more orders or counts extend it)",
    )
    sc.add_argument("--fractions", type=_floats, default=[1.0, 0.1], metavar="F,F,...")
    sc.add_argument("--seeds", type=int, default=3, help="seeds per fraction below 1")
    _add_study_pretrain_options(sc)
    _add_encoder_options(sc)

    ni = command(
        "next-item-probe",
        "leave-one-source-out: does a next-item model over text vectors beat the last item's text?",
    )
    ni.add_argument("--sources", nargs="+", type=Path, required=True, metavar="DIR")
    ni.add_argument("--out", type=Path, required=True, metavar="RESULTS_JSON")
    ni.add_argument("--table", type=Path, default=None, metavar="FILE.md", help="markdown table")
    ni.add_argument(
        "--customers",
        type=int,
        default=3_000,
        help="held-out customers scored per source (default: %(default)s)",
    )
    ni.add_argument(
        "--fractions",
        type=_floats,
        default=[1.0, 0.1],
        metavar="F,F,...",
        help="shares of the held-out shop's customers its own models train on",
    )
    ni.add_argument(
        "--steps", type=int, default=NextItemTraining.steps, help="training steps per model"
    )
    ni.add_argument(
        "--negatives",
        type=int,
        default=NextItemTraining.uniform_negatives,
        help="items drawn uniformly per batch as negatives; 0: the whole catalogue "
        "(default: %(default)s)",
    )
    ni.add_argument(
        "--no-in-shop",
        action="store_true",
        help="skip the model trained on the held-out shop itself",
    )
    _add_encoder_options(ni)

    e = command(
        "pretrain-encoder", "fine-tune the text encoder on several retailers' product pairs"
    )
    e.add_argument(
        "--sources", nargs="+", type=Path, required=True, metavar="DIR", help="retailer folders"
    )
    e.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="ENCODER_DIR",
        help="where the fine-tuned sentence-transformers folder is published",
    )
    e.add_argument(
        "--encoder",
        default="default",
        metavar="BASE",
        help="model to start from: 'default' (the packaged all-MiniLM-L6-v2) or a local "
        "sentence-transformers directory",
    )
    e.add_argument(
        "--freeze-layers",
        type=int,
        default=et.DEFAULT_FREEZE_LAYERS,
        metavar="N",
        help="lowest transformer layers kept frozen, besides the embeddings",
    )
    e.add_argument("--epochs", type=int, default=et.DEFAULT_EPOCHS, help="passes over the pairs")
    e.add_argument(
        "--max-pairs",
        type=int,
        default=et.DEFAULT_MAX_PAIRS,
        help="product-text pairs, spread across sources",
    )
    e.add_argument(
        "--work-dir", type=Path, default=None, help="checkpoints (default: ENCODER_DIR.work)"
    )
    e.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: one per core)"
    )
    e.add_argument("--random-state", "--seed", dest="seed", type=int, default=0, help="random seed")

    a = command("adapt", "fine-tune a broad model to one retailer (with guard)")
    a.add_argument("--base", type=Path, required=True, metavar="MODEL_DIR", help="the broad model")
    a.add_argument(
        "--retailer", type=Path, required=True, metavar="DIR", help="the retailer's folder"
    )
    a.add_argument(
        "--out", type=Path, required=True, metavar="MODEL_DIR", help="where the model is saved"
    )
    a.add_argument("--name", default=None, help="retailer name (default: the folder's name)")
    a.add_argument(
        "--tune-encoder",
        type=Path,
        default=None,
        metavar="ENCODER_DIR",
        help="also tune the text encoder on this retailer's product pairs into this new folder; "
        "kept only if the guard's validation figures improve with it",
    )
    _add_ship_rules_option(a)
    _add_encoder_options(a, model_given=True)

    r = command("recommend", "export top-K recommendations to Parquet")
    r.add_argument(
        "--model", type=Path, required=True, metavar="MODEL_DIR", help="an adapted or broad model"
    )
    r.add_argument(
        "--retailer", type=Path, required=True, metavar="DIR", help="the retailer's folder"
    )
    r.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="EXPORT_ROOT",
        help="the export root (partitions retailer=<name>/run_date=<date>/)",
    )
    r.add_argument("--k", type=int, default=20, help="items per customer")
    r.add_argument("--run-date", default=None, metavar="YYYY-MM-DD", help="default: today (UTC)")
    r.add_argument("--name", default=None, help="retailer name (default: the folder's name)")
    r.add_argument(
        "--keep-bought", action="store_true", help="do not remove items customers already bought"
    )
    _add_encoder_options(r, model_given=True)

    b = command("benchmark", "every model against the baselines on one target retailer")
    b.add_argument(
        "--base",
        type=Path,
        required=True,
        metavar="MODEL_DIR",
        help="a broad model pretrained on other shops",
    )
    b.add_argument(
        "--target", type=Path, required=True, metavar="DIR", help="the target retailer's folder"
    )
    b.add_argument(
        "--fractions",
        type=_floats,
        default=[1.0, 0.25, 0.1],
        metavar="F,F,...",
        help="shares of the customers that play a small retailer",
    )
    b.add_argument("--seeds", type=int, default=3, help="seeds per fraction below 1")
    b.add_argument("--k", type=_ints, default=[10, 20, 50], metavar="K,K,...", help="list lengths")
    b.add_argument(
        "--out", type=Path, required=True, metavar="RESULTS_JSON", help="where the JSON goes"
    )
    b.add_argument(
        "--cold-customers",
        action="store_true",
        help="instead: hide 20%% of the customers with text and recommend from their text alone",
    )
    b.add_argument("--plot", type=Path, default=None, metavar="FILE.png", help="a plot of NDCG")
    b.add_argument(
        "--tune-encoder",
        action="store_true",
        help="add the rows of adapt's per-retailer encoder step (minutes per fraction and seed)",
    )
    b.add_argument(
        "--sequential",
        action="store_true",
        help="add the sasrec row: SASRec on the shop alone, tuned on validation (minutes per "
        "fraction and seed)",
    )
    b.add_argument(
        "--own-history-kept",
        action="store_true",
        help="also rank the untrained rows (and sasrec) with the customers' own earlier items "
        "left in",
    )
    b.add_argument(
        "--rows",
        type=_names,
        default=None,
        metavar="ROW,...",
        help="compute only these rows (e.g. 'broad' for zero-shot transfer alone; default: all)",
    )
    _add_ship_rules_option(b)
    b.add_argument("--name", default=None, help="retailer name (default: the folder's name)")
    _add_encoder_options(b, model_given=True)

    bench = command("bench", "performance benchmarks (each writes a JSON file)")
    benches = bench.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    for name in BENCHMARKS:
        module = benchmark_module(name)
        sub = benches.add_parser(
            name, help=module.HELP, description=module.HELP, formatter_class=_HelpFormatter
        )
        module.add_arguments(sub)
        _add_quiet(sub)
        sub.add_argument(
            "--out", type=Path, required=True, metavar="RESULTS_JSON", help="where the JSON goes"
        )

    d = command("demo", "pretrain on the sample source shops, adapt to the target, export")
    d.add_argument(
        "--workdir", type=Path, default=Path("demo_output"), metavar="DIR", help="output folder"
    )
    d.add_argument(
        "--data", type=Path, default=None, metavar="DIR", help="default: the bundled sample_data"
    )
    _add_encoder_options(d)
    return parser


def _add_study_pretrain_options(parser: argparse.ArgumentParser) -> None:
    """The pretrain options of the commands that pretrain broad models to study them."""
    parser.add_argument(
        "--max-customers", type=int, default=8_000, help="pretrain: training lists per source"
    )
    parser.add_argument(
        "--early-stopping-rounds", type=int, default=BROAD_EARLY_STOPPING_ROUNDS, help="pretrain"
    )
    _add_virtual_shops_option(parser)
    _add_max_negatives_option(parser)


def _add_max_negatives_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-negatives",
        type=int,
        default=MAX_TRAINING_NEGATIVES,
        metavar="N",
        help="pretrain: unlabelled candidates kept (sampled) per training list",
    )


def _study_pretrain_options(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "max_customers_per_retailer": args.max_customers,
        "early_stopping_rounds": args.early_stopping_rounds,
        "virtual_shops": args.virtual_shops,
        # only when asked: documents from before the option resume with the default
        **(
            {"max_negatives": args.max_negatives}
            if args.max_negatives != MAX_TRAINING_NEGATIVES
            else {}
        ),
    }


def _document_writer(
    args: argparse.Namespace, markdown: Callable[[dict[str, Any]], str]
) -> Callable[[dict[str, Any]], None]:
    """Writes a study's JSON to ``--out`` and, with ``--table``, its markdown (after every step)."""
    from rectransfer.evaluation.benchmark import write_report

    def written(doc: dict[str, Any]) -> None:
        write_report(doc, args.out)
        if args.table is not None:
            args.table.parent.mkdir(parents=True, exist_ok=True)
            args.table.write_text(markdown(doc) + "\n", encoding="utf-8")

    return written


def _add_virtual_shops_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--virtual-shops",
        type=_fractions_or_none,
        default=list(DEFAULT_VIRTUAL_SHOPS),
        metavar="F,F,...|none",
        help="pretrain also on each source's seeded customer subsamples at these fractions, "
        "each as a small shop of its own; 'none' for the sources alone (default: "
        + ",".join(f"{f:g}" for f in DEFAULT_VIRTUAL_SHOPS)
        + ")",
    )


def _add_ship_rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ship-rules",
        action="store_true",
        help="let the guard ship a rule (popularity, or last-item text + transitions) where it "
        "clearly beats the learnt models on validation (off: on the development loop such wins "
        "did not hold on test)",
    )


def _fractions_or_none(text: str) -> list[float]:
    return [] if text.strip().lower() == "none" else _floats(text)


def _names(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


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


def _load_model(path: Path, args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The model at ``path`` with ``--encoder`` if given, else the encoder it was trained with."""
    import rectransfer as rt
    from rectransfer.text.load import load_encoder

    model = rt.RecModel.load(path)
    spec = args.encoder if args.encoder is not None else model.config.encoder.spec
    return model.with_encoder(load_encoder(spec, cache_dir=args.cache_dir))


def _check_destinations(args: argparse.Namespace) -> None:
    """Refuse bad options and destinations in a second, before any data is read or trained on.

    A save replaces only what rectransfer wrote, never an input (see
    :mod:`rectransfer.utils.destinations`); a destination that cannot be written at all (a file
    in the way, a read-only folder, a name too long) is reported now rather than after training.
    """
    from rectransfer.errors import ConfigError
    from rectransfer.serving.export import check_export_root
    from rectransfer.text.tuning import check_tune_folder
    from rectransfer.utils.destinations import check_model_destination, check_writable_parent

    if args.command == "pretrain":
        check_model_destination(args.out, inputs=args.sources)
        check_writable_parent(args.out, beside=True)
    elif args.command == "pretrain-encoder":
        inputs = list(args.sources)
        if args.encoder.strip() != "default":
            inputs.append(Path(args.encoder))
        check_model_destination(args.out, inputs=inputs, kind="encoder")
        check_writable_parent(args.out, beside=True)
    elif args.command == "adapt":
        inputs = [args.retailer, args.base]
        tuned = [args.tune_encoder] if args.tune_encoder is not None else []
        check_model_destination(args.out, inputs=inputs + tuned)
        check_writable_parent(args.out, beside=True)
        if args.tune_encoder is not None:
            check_tune_folder(
                args.tune_encoder, inputs=[*inputs, args.out], option="--tune-encoder"
            )
            check_writable_parent(args.tune_encoder, option="--tune-encoder", beside=True)
    elif args.command == "recommend":
        if args.k < 1:
            raise ConfigError(f"--k must be a positive integer (items per customer), got {args.k}")
        check_writable_parent(args.out)
        check_export_root(args.out)
    elif args.command in ("benchmark", "bench", "loso", "source-curve", "next-item-probe"):
        check_writable_parent(args.out, folder=False)


def _run(args: argparse.Namespace) -> None:
    import rectransfer as rt

    _check_destinations(args)
    if args.command == "check":
        data = rt.RetailerData.load(args.folder, name=args.name)
        print(describe(data))
    elif args.command == "pretrain":
        model = rt.pretrain(
            args.sources,
            encoder=_encoder(args),
            max_customers_per_retailer=args.max_customers,
            random_state=args.seed,
            early_stopping_rounds=args.early_stopping_rounds,
            virtual_shops=args.virtual_shops,
            weight_towards=args.weight_towards,
            max_negatives=args.max_negatives,
        )
        path = model.save(args.out)
        print(f"broad model {model.model_version} trained on {model.config.trained_on} -> {path}")
    elif args.command == "loso":
        from rectransfer.evaluation.loso import loso_markdown, run_loso
        from rectransfer.evaluation.studies import load_document

        written = _document_writer(args, loso_markdown)

        doc = run_loso(
            args.sources,
            encoder=_encoder(args),
            customers=args.customers,
            fractions=args.fractions,
            seeds=args.seeds,
            ks=args.k,
            pretrain_options=_study_pretrain_options(args),
            held_out=args.held_out,
            ship_rules=args.ship_rules,
            weight_sources=args.weight_sources,
            random_state=args.seed,
            resume=load_document(args.out) if args.resume else None,
            on_fold=written,
        )
        written(doc)
        print(loso_markdown(doc))
        print(f"results -> {args.out}")
    elif args.command == "source-curve":
        from rectransfer.evaluation.source_curve import curve_markdown, run_source_curve
        from rectransfer.evaluation.studies import load_document

        written_curve = _document_writer(args, curve_markdown)

        doc = run_source_curve(
            args.sources,
            args.targets,
            counts=args.counts,
            orders=args.orders,
            encoder=_encoder(args),
            fractions=args.fractions,
            seeds=args.seeds,
            pretrain_options=_study_pretrain_options(args),
            random_state=args.seed,
            resume=load_document(args.out) if args.resume else None,
            on_point=written_curve,
        )
        written_curve(doc)
        print(curve_markdown(doc))
        print(f"results -> {args.out}")
    elif args.command == "next-item-probe":
        from rectransfer.evaluation.next_item_probe import next_item_markdown, run_next_item_probe

        written_probe = _document_writer(args, next_item_markdown)
        doc = run_next_item_probe(
            args.sources,
            encoder=_encoder(args),
            customers=args.customers,
            fractions=args.fractions,
            training=NextItemTraining(steps=args.steps, uniform_negatives=args.negatives),
            in_shop=not args.no_in_shop,
            random_state=args.seed,
            on_fold=written_probe,
        )
        written_probe(doc)
        print(next_item_markdown(doc))
        print(f"results -> {args.out}")
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
        base = _load_model(args.base, args)
        data = rt.RetailerData.load(args.retailer, name=args.name)
        model = rt.adapt(
            base,
            data,
            tune_encoder_to=args.tune_encoder,
            ship_rules=args.ship_rules,
            random_state=args.seed,
        )
        path = model.save(args.out)
        assert model.guard is not None
        print(model.guard.table())
        if model.config.encoder_tuning is not None:
            print(f"encoder tuning: {model.config.encoder_tuning.reason}")
        print(f"model {model.model_version} for {data.name} -> {path}")
    elif args.command == "recommend":
        from rectransfer.serving.export import check_retailer_name

        model = _load_model(args.model, args)
        data = rt.RetailerData.load(args.retailer, name=args.name)
        check_retailer_name(data.name)  # before scoring: the name becomes the partition folder
        counts = {"rows": 0, "customers": 0}
        customers = len(model.prepare(data).index.user_ids)  # prepared once, reused below

        def counted(chunks, bar):  # type: ignore[no-untyped-def]
            for chunk in chunks:
                counts["rows"] += chunk.height
                counts["customers"] += chunk["user_id"].n_unique()
                bar.update(chunk["user_id"].n_unique())
                yield chunk

        # Chunks of customers stream into the staged file: memory stays flat at any size.
        with progress(f"recommending for {data.name}", total=customers, unit="customers") as bar:
            path = rt.write_recommendation_chunks(
                counted(
                    rt.iter_recommendations(
                        model, data, k=args.k, exclude_bought=not args.keep_bought
                    ),
                    bar,
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

        base = _load_model(args.base, args)
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
            sequential_references=args.sequential,
            tune_encoder=args.tune_encoder,
            own_history_kept=args.own_history_kept,
            rows=args.rows,
            ship_rules=args.ship_rules,
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


def describe(data: RetailerData) -> str:
    """What ``rectransfer check`` prints of a valid retailer: its sizes and what it can serve."""
    interactions = data.interactions
    per_customer = interactions.group_by(Columns.USER).len()["len"]
    returning = int((per_customer >= 2).sum())
    with_text = 0 if data.users is None else data.users.height
    in_stock = int(data.items[Columns.IN_STOCK].sum())
    lines = [
        f"{data.name}: valid",
        f"  products      {data.n_items:>10,}  ({in_stock:,} in stock)",
        f"  customers     {data.n_users:>10,}  ({returning:,} with two or more interactions)",
        f"  interactions  {data.n_interactions:>10,}",
        f"  customer text {with_text:>10,}",
    ]
    if interactions.height:
        first, last = interactions[Columns.TIMESTAMP].min(), interactions[Columns.TIMESTAMP].max()
        days = (int(last) - int(first)) / 86_400  # type: ignore[arg-type]
        lines.append(f"  time span     {days:>10,.1f} days")
    return "\n".join(lines)


def _one_line_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """Data-quality warnings as one readable line, without a source path of the package."""
    text = " ".join(str(message).split())
    print(f"rectransfer: warning: {text}", file=file or sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if issubclass(category, DataQualityWarning):
            _one_line_warning(message, category, filename, lineno, file, line)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    handler = log_to_stderr(quiet=args.quiet)
    try:
        _run(args)
    except RecTransferError as err:
        message = " ".join(str(err).split())
        print(f"rectransfer: error: {message}", file=sys.stderr)
        return 2
    except OSError as err:
        # The environment, not the input: a full disk, a folder made read-only or removed while
        # the command ran. The writers leave the previous output in place; say what failed.
        print(f"rectransfer: error: {_describe(err)}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = shown
        LOGGER.removeHandler(handler)
    return 0


def _describe(err: OSError) -> str:
    """One line for an ``OSError``: what failed, on which path, and what to check."""
    reason = err.strerror or type(err).__name__
    where = f"{err.filename}: " if err.filename else ""
    hint = {
        errno.ENOSPC: "free space on that disk and run the command again",
        errno.EDQUOT: "free space within your quota and run the command again",
        errno.EACCES: "make the folder writable or pass another path",
        errno.EPERM: "make the folder writable or pass another path",
        errno.EROFS: "pass a path on a writable file system",
        errno.ENAMETOOLONG: "pass a shorter path",
    }.get(err.errno or 0, "check the path and the disk, then run the command again")
    return " ".join(f"{where}{reason}; {hint}".split())


if __name__ == "__main__":
    sys.exit(main())
