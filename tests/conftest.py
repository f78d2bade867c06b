import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
REFERENCE_MODELS = REPO / "tests" / "models"            # MLPerf Tiny, kept in the repository (see its README)
PUBLIC_MODELS = REPO.parent / "shared" / "models" / "public"


@pytest.fixture(scope="session")
def reference_models() -> Path:
    """mlperf_tiny/*.tflite and mlperf_tiny_onnx/*.onnx: every clone has them."""
    return REFERENCE_MODELS


@pytest.fixture(scope="session")
def public_models() -> Path:
    """The larger corpus of other projects' models, kept outside the repository in ../shared/models/public."""
    if not PUBLIC_MODELS.is_dir():
        pytest.skip(f"the public model corpus is not at {PUBLIC_MODELS} (../shared/models/public beside the repo)")
    return PUBLIC_MODELS
