"""The public data sets beside the project load through the data contract (skipped when absent)."""

import warnings

import pytest

import rectransfer as rt
from rectransfer.data.histories import RetailerIndex
from tests.conftest import SHARED_DATASETS

pytestmark = pytest.mark.shared

NAMES = (
    sorted(p.name for p in SHARED_DATASETS.iterdir() if p.is_dir())
    if SHARED_DATASETS.is_dir()
    else []
)


@pytest.mark.skipif(not NAMES, reason="the shared data sets are not beside the project")
@pytest.mark.parametrize("name", NAMES)
def test_every_shared_dataset_loads_and_indexes(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rt.DataQualityWarning)  # a few products lack a title
        data = rt.RetailerData.load(SHARED_DATASETS / name)
    index = RetailerIndex.build(data)
    assert index.histories.n_items == data.n_items
    assert int(index.histories.lengths.sum()) == data.n_interactions
    assert len(index.user_ids) >= data.n_users
