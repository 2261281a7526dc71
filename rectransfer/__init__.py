"""rectransfer: product recommendations for small retailers, transferred from many.

Product and customer text become vectors in one shared space; a LightGBM ranker over features that
mean the same at every shop is pretrained on many retailers, fine-tuned to one retailer with a
negative-transfer guard, and serves top-K lists with business rules.

Examples
--------
>>> import rectransfer as rt
>>> shop = rt.RetailerData.load("sample_data/targets/trailhead_market")
>>> model = rt.adapt(rt.RecModel.load(broad_dir), shop)  # the broad model: models/broad
>>> recs = rt.recommend(model, shop, ["tm-0551", "tm-7389"], k=10)
>>> recs.columns
['user_id', 'item_id', 'rank', 'score', 'source']
>>> path = model.save(workdir / "trailhead_market")
"""

import os

# Before LightGBM and torch load their OpenMP runtimes: idle OpenMP threads sleep instead of
# spinning, so the two libraries (and other processes on a small machine) do not steal each
# other's cores; spinning threads made torch steps many times slower on a shared 2-core machine.
# A value set by the user wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


from rectransfer.data.columns import Columns
from rectransfer.data.retailer import RetailerData
from rectransfer.errors import (
    ConfigError,
    DataQualityWarning,
    IncompatibleArtifactError,
    RecTransferError,
    SchemaError,
)
from rectransfer.model.config import GuardReport
from rectransfer.model.recmodel import RecModel
from rectransfer.ranking.candidates import CandidateConfig
from rectransfer.ranking.features import FEATURE_NAMES
from rectransfer.serving.export import (
    read_recommendations,
    write_recommendation_chunks,
    write_recommendations,
)
from rectransfer.serving.online import recommend_for
from rectransfer.serving.recommend import iter_recommendations, recommend
from rectransfer.text.encoder import Encoder, HashingEncoder, SentenceTransformerEncoder
from rectransfer.text.load import load_encoder
from rectransfer.transfer.adapt import adapt
from rectransfer.transfer.distributed import pretrain_on_dask
from rectransfer.transfer.pretrain import pretrain

__all__ = [
    "FEATURE_NAMES",
    "CandidateConfig",
    "Columns",
    "ConfigError",
    "DataQualityWarning",
    "Encoder",
    "GuardReport",
    "HashingEncoder",
    "IncompatibleArtifactError",
    "RecModel",
    "RecTransferError",
    "RetailerData",
    "SchemaError",
    "SentenceTransformerEncoder",
    "adapt",
    "iter_recommendations",
    "load_encoder",
    "pretrain",
    "pretrain_on_dask",
    "read_recommendations",
    "recommend",
    "recommend_for",
    "write_recommendation_chunks",
    "write_recommendations",
]
__version__ = "0.1.0"
