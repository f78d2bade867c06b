import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED_MODELS = REPO.parent / "shared" / "models"


@pytest.fixture(scope="session")
def shared_models() -> Path:
    if not (SHARED_MODELS / "mlperf_tiny").is_dir():
        pytest.skip(f"reference models not found at {SHARED_MODELS} (../shared/models beside the repo)")
    return SHARED_MODELS
