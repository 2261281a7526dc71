"""Docstring examples run as doctests on the bundled sample data (``make test``).

Every example may use ``rt`` (the package), ``shop`` (the sample target shop), ``model`` (a broad
model pretrained on two sample source shops with the fast hashing encoder), ``broad_dir`` (where
that model is saved) and ``workdir`` (an empty folder of its own). Examples run from the project
root, so ``sample_data/...`` paths work as they do for a reader.
"""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="session")
def doctest_broad_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import rectransfer as rt

    sources = [SAMPLE / "sources" / name for name in ("harbor_home", "summit_supply")]
    broad = rt.pretrain(sources, encoder=rt.load_encoder("hashing:64"), max_rounds=20)
    return broad.save(tmp_path_factory.mktemp("doctest-models") / "broad")


@pytest.fixture(autouse=True)
def _doctest_names(request: pytest.FixtureRequest) -> None:
    if not isinstance(request.node, pytest.DoctestItem):
        return
    import rectransfer as rt

    namespace = request.getfixturevalue("doctest_namespace")
    broad_dir = request.getfixturevalue("doctest_broad_dir")
    request.getfixturevalue("monkeypatch").chdir(ROOT)
    namespace.update(
        rt=rt,
        shop=rt.RetailerData.load(SAMPLE / "targets" / "trailhead_market"),
        model=rt.RecModel.load(broad_dir),
        broad_dir=broad_dir,
        workdir=request.getfixturevalue("tmp_path"),
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Doctests come from the package: a helper module under ``tests/`` (a crash hook, a Dask
    preload that patches the package when imported) is never imported just to look for them."""
    name = collection_path.name
    if (
        collection_path.suffix == ".py"
        and "tests" in collection_path.relative_to(ROOT).parts
        and not name.startswith("test_")
        and name not in ("conftest.py", "__init__.py")
    ):
        return True
    return None
