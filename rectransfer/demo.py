"""The demo: pretrain on the sample source shops, adapt to the sample target shop, export."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rectransfer.data.retailer import RetailerData, retailer_folders
from rectransfer.errors import ConfigError
from rectransfer.model.config import GuardReport
from rectransfer.serving.export import write_recommendations
from rectransfer.serving.recommend import recommend
from rectransfer.text.encoder import Encoder
from rectransfer.transfer.adapt import adapt
from rectransfer.transfer.pretrain import pretrain


@dataclass(frozen=True)
class DemoResult:
    broad_dir: Path
    adapted_dirs: dict[str, Path]
    exports: dict[str, Path]
    guards: dict[str, GuardReport]


def bundled_sample_data() -> Path:
    """``sample_data/`` of the source tree (the demo's data when none is given)."""
    here = Path(__file__).resolve().parent.parent / "sample_data"
    return here if here.is_dir() else Path("sample_data")


def run_demo(
    workdir: str | Path,
    *,
    data_dir: str | Path | None = None,
    encoder: Encoder,
    random_state: int = 0,
    k: int = 20,
    run_date: str | None = None,
    echo: bool = True,
) -> DemoResult:
    """Pretrain on ``<data>/sources/*``, adapt to each ``<data>/targets/*``, export top-``k``."""
    data_root = Path(data_dir) if data_dir is not None else bundled_sample_data()
    sources_root, targets_root = data_root / "sources", data_root / "targets"
    if not sources_root.is_dir() or not targets_root.is_dir():
        raise ConfigError(
            f"{data_root}: expected folders 'sources/' and 'targets/' with one folder per shop; "
            "regenerate them with `python sample_data/generate.py` or pass --data."
        )
    workdir = Path(workdir)
    say = print if echo else (lambda *_: None)

    sources = [RetailerData.load(p) for p in retailer_folders(sources_root)]
    say(f"pretraining the broad model on {len(sources)} shops: {[s.name for s in sources]}")
    broad = pretrain(sources, encoder=encoder, random_state=random_state)
    broad_dir = broad.save(workdir / "models" / "broad")

    adapted_dirs, exports, guards = {}, {}, {}
    for folder in retailer_folders(targets_root):
        shop = RetailerData.load(folder)
        say(f"\nadapting to {shop.name} ({shop.n_items} products, {shop.n_users} customers)")
        model = adapt(broad, shop, random_state=random_state)
        adapted_dirs[shop.name] = model.save(workdir / "models" / shop.name)
        recs = recommend(model, shop, k=k)
        exports[shop.name] = write_recommendations(
            recs,
            workdir / "exports",
            retailer=shop.name,
            run_date=run_date,
            model_version=model.model_version,
        )
        assert model.guard is not None  # adapt always reports
        guards[shop.name] = model.guard
        say(model.guard.table())
        say(
            f"{recs.height} recommendations for {recs['user_id'].n_unique()} customers "
            f"-> {exports[shop.name]}"
        )
    return DemoResult(broad_dir, adapted_dirs, exports, guards)
