"""Model and tokenizer names: a local folder, or a Hugging Face Hub repo id resolved through the cache.

Everything in the package that takes the name of a model, tokenizer or entity vocabulary (every
``from_pretrained``, ``--model``/``--tokenizer``, ``model:`` in pretraining configurations, ``luke info``,
``luke convert``) calls :func:`resolve_pretrained`, which turns the name into a folder:

* an existing local folder is returned as it is (a local folder always wins over a repo id of the same
  name);
* anything else that is a Hub repo id (``org/name``, or a legacy ``name``) is looked up with
  ``huggingface_hub``: the snapshot folder in the Hugging Face cache (``HF_HUB_CACHE``, or ``cache_dir``)
  is returned, downloaded first when online. Only the files the caller needs are fetched: the repo is
  listed once and ``files`` picks config, ONE weights format (``model.safetensors`` when the repo has it,
  else ``pytorch_model.bin``), tokenizer files, entity vocabulary, ``luke_task.json``.

Offline (``HF_HUB_OFFLINE=1``, ``local_files_only=True``, or the Hub out of reach) only the cache is read.
Every failure is one :class:`~luke.errors.CheckpointError` line naming the id and the revision: not in
the cache while offline (and how to fix it), no such repo, no such revision, a gated or private repo, a
name that is neither a folder nor a repo id, a path that is a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from luke.errors import CheckpointError, error_summary, shorten

__all__ = [
    "HUB_KWARGS",
    "FILE_SETS",
    "pop_hub_kwargs",
    "resolve_pretrained",
    "select_files",
    "list_repo_files",
    "download_files",
    "is_offline",
    "is_repo_id",
]

HUB_KWARGS: tuple[str, ...] = ("revision", "cache_dir", "local_files_only", "token")
"""The keyword arguments every ``from_pretrained`` accepts for the Hub, as in ``transformers``."""

Files = Literal["model", "tokenizer", "entity_vocab", "config", "archive"]

CONFIG_FILES = ("config.json",)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
)
ENTITY_VOCAB_FILES = ("entity_vocab.json", "entity_vocab.jsonl", "entity_vocab.tsv")
TASK_FILES = ("luke_task.json",)
ARCHIVE_FILES = ("metadata.json", "pytorch_model.bin", "entity_vocab.tsv", "entity_vocab.jsonl")
SAFETENSORS = "model.safetensors"
PYTORCH_BIN = "pytorch_model.bin"
FILE_SETS: dict[str, tuple[str, ...]] = {
    "config": CONFIG_FILES,
    "entity_vocab": ENTITY_VOCAB_FILES,
    # config.json too: AutoTokenizer reads its model_type when tokenizer_config.json names no class
    "tokenizer": CONFIG_FILES + TOKENIZER_FILES + ENTITY_VOCAB_FILES,
    "model": CONFIG_FILES + TOKENIZER_FILES + ENTITY_VOCAB_FILES + TASK_FILES,
    "archive": ARCHIVE_FILES,
}
"""The files each ``files=`` value fetches (``"model"`` adds one weights format, see :func:`select_files`)."""

_REQUIRED: dict[str, tuple[str, ...]] = {"config": CONFIG_FILES, "model": CONFIG_FILES}
# ("archive" requires nothing here: `luke convert` says what a folder without metadata.json is instead)
_SHARD = re.compile(r"^(model|pytorch_model)-\d+-of-\d+\.(safetensors|bin)$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_DOWNLOAD_HINT = "go online (unset HF_HUB_OFFLINE, drop local_files_only) or download it first with `hf download {}`"


def pop_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Remove the :data:`HUB_KWARGS` from ``kwargs`` (in place) and return them as a new dict, ready for
    ``resolve_pretrained(name, **hub_kwargs)``; keys that are absent are left out."""
    return {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}


def is_offline(local_files_only: bool | None = None) -> bool:
    """Whether the Hub must not be contacted: ``local_files_only``, or ``HF_HUB_OFFLINE`` (also
    ``TRANSFORMERS_OFFLINE``) set in the environment now or when ``huggingface_hub`` was imported."""
    if local_files_only:
        return True
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return bool(constants.HF_HUB_OFFLINE) or env.strip().upper() in ("1", "ON", "YES", "TRUE")


def resolve_pretrained(
    name_or_path: str | os.PathLike[str],
    *,
    files: Files = "model",
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    token: str | bool | None = None,
) -> Path:
    """The folder holding the model, tokenizer or entity vocabulary called ``name_or_path``.

    Args:
        name_or_path: a local folder (returned as it is when it exists), or a Hugging Face Hub repo id
            such as ``"studio-ousia/luke-base"``.
        files: what the caller will read, which decides what is downloaded: ``"model"`` (config, one
            weights format, tokenizer files, entity vocabulary, ``luke_task.json``), ``"tokenizer"``
            (tokenizer files and entity vocabulary), ``"entity_vocab"``, ``"config"`` or ``"archive"`` (an
            original LUKE model archive unpacked in a repo: ``metadata.json``, ``pytorch_model.bin``,
            ``entity_vocab.tsv``/``.jsonl``).
        revision: a branch, tag or commit hash of the repo (default ``main``).
        cache_dir: the Hugging Face cache to use instead of ``HF_HUB_CACHE``.
        local_files_only: read the cache only, never the network (also when ``HF_HUB_OFFLINE=1``).
        token: a Hub access token (``True``: the stored login) for private or gated repos.

    Returns:
        The folder: ``name_or_path`` itself, or the repo's snapshot folder in the cache.

    Raises:
        CheckpointError: one line naming the id and revision when the name is a file, is neither a folder
            nor a repo id, or the repo cannot be had (not cached while offline, no such repo or revision,
            gated or private, the Hub out of reach and nothing cached, required files missing).
    """
    if files not in FILE_SETS:
        raise ValueError(f"files must be one of {', '.join(FILE_SETS)}, not {files!r}")
    path = Path(name_or_path)
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path}: is a file; expected a model folder or a Hugging Face Hub repo id")
    repo_id = name_or_path if isinstance(name_or_path, str) else None
    if repo_id is None or not is_repo_id(repo_id):
        raise CheckpointError(
            f"{shorten(str(name_or_path), 200)}: no such folder (it does not exist), and not a Hugging Face Hub "
            "repo id (ORG/NAME)"
        )
    where = f"{repo_id} (revision {revision or 'main'})"
    if is_offline(local_files_only):
        folder = _cached_snapshot(repo_id, revision, cache_dir, reason="offline")
        _check_required(folder, files, where, hint=_DOWNLOAD_HINT.format(repo_id))
        return folder
    folder = _download(repo_id, files, revision, cache_dir, token, where)
    _check_required(folder, files, where, hint=f"files of the repo: {', '.join(_listing_of(folder))}")
    return folder


def is_repo_id(name: object) -> bool:
    """A string the Hub could know as a model repo: ``name`` or ``org/name`` (never ``./x``, ``/x``,
    ``~/x``, ``a/b/c``, a Windows path or a :class:`~pathlib.Path`)."""
    if not isinstance(name, str) or not name or name.startswith((".", "/", "~")) or "\\" in name:
        return False
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def _is_connection_error(err: BaseException) -> bool:
    """A network failure (no route, timeout, proxy, DNS), whatever HTTP library ``huggingface_hub`` uses."""
    if isinstance(err, (OSError, ConnectionError, TimeoutError)):
        return True
    return type(err).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3")


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE).expanduser()


def _cached_snapshot(
    repo_id: str, revision: str | None, cache_dir: str | os.PathLike[str] | None, *, reason: str
) -> Path:
    """The snapshot folder of ``repo_id`` at ``revision`` in the cache (a branch or tag through
    ``refs/``, a commit hash directly); one-line error when the repo or the revision is not there."""
    root = _cache_root(cache_dir)
    repo = root / ("models--" + repo_id.replace("/", "--"))
    rev = revision or "main"
    hint = _DOWNLOAD_HINT.format(repo_id + ("" if rev == "main" else f" --revision {rev}"))
    if reason != "offline":  # online but the Hub failed: HF_HUB_OFFLINE is not the cause
        hint = "try again when the Hub can be reached, or " + hint.split(" or ", 1)[1]
    if not (repo / "snapshots").is_dir():
        raise CheckpointError(
            f"{repo_id} (revision {rev}): no such local folder, and the repo is not in the Hugging Face cache "
            f"({root}); "
            f"{reason}, so nothing was downloaded: {hint}"
        )
    commit = rev if _COMMIT.fullmatch(rev) else None
    ref = repo / "refs" / rev
    if commit is None and ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
    snapshot = repo / "snapshots" / commit if commit else None
    if snapshot is None or not snapshot.is_dir():
        refs = sorted(str(p.relative_to(repo / "refs")) for p in (repo / "refs").rglob("*") if p.is_file())
        snaps = sorted(p.name[:12] for p in (repo / "snapshots").iterdir() if p.is_dir())
        cached = ", ".join(refs + [s for s in snaps if not refs]) or "nothing"
        raise CheckpointError(
            f"{repo_id} (revision {rev}): this revision is not in the Hugging Face cache ({root}; cached: {cached}); "
            f"{reason}, so nothing was downloaded: {hint}"
        )
    return snapshot


def _check_required(folder: Path, files: str, where: str, *, hint: str) -> None:
    """The files without which ``files`` cannot be used must be in ``folder`` (a partial cache, or a repo
    that is not a model)."""
    missing = [name for name in _REQUIRED.get(files, ()) if not (folder / name).is_file()]
    if files == "model" and not any(
        (folder / n).is_file() for n in (SAFETENSORS, PYTORCH_BIN, SAFETENSORS + ".index.json")
    ):
        missing.append(f"{SAFETENSORS} or {PYTORCH_BIN}")
    if missing:
        raise CheckpointError(f"{where}: no {' and no '.join(missing)} in {folder}; {shorten(hint, 300)}")


def _listing_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def select_files(repo_files: Iterable[str], files: Files = "model") -> list[str]:
    """The files of a repo (its listing, ``repo_files``) that ``files`` needs, in listing order: the
    names of :data:`FILE_SETS` that the repo has and, for ``"model"``, ONE weights format:
    ``model.safetensors`` (or its shards and index) when present, else ``pytorch_model.bin`` (or its
    shards and index); TensorFlow, Flax, ONNX and other files are never fetched."""
    listing = list(repo_files)
    wanted = set(FILE_SETS[files])
    if files == "model":
        names = set(listing)
        for weights in (SAFETENSORS, PYTORCH_BIN):
            index = weights + ".index.json"
            if weights in names:
                wanted.add(weights)
                break
            if index in names:
                suffix = weights.rsplit(".", 1)[1]
                wanted.add(index)
                wanted.update(n for n in names if _SHARD.fullmatch(n) and n.endswith("." + suffix))
                break
    return [name for name in listing if name in wanted]


def list_repo_files(repo_id: str, *, revision: str | None = None, token: str | bool | None = None) -> list[str]:
    """The file names of a Hub model repo at ``revision`` (one call to the Hub; may raise
    ``huggingface_hub`` errors, which :func:`resolve_pretrained` turns into one line)."""
    from huggingface_hub import HfApi

    info = HfApi(token=token).model_info(repo_id, revision=revision)
    return [sibling.rfilename for sibling in info.siblings or ()]


def download_files(
    repo_id: str,
    filenames: Sequence[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> Path:
    """Download ``filenames`` of ``repo_id`` into the Hugging Face cache (files already there are not
    fetched again) and return the snapshot folder; the branch or tag is recorded under ``refs/`` so a
    later offline call finds it."""
    from huggingface_hub import snapshot_download

    folder = snapshot_download(
        repo_id,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        allow_patterns=list(filenames),
    )
    return Path(folder)


def _download(
    repo_id: str,
    files: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    token: str | bool | None,
    where: str,
) -> Path:
    """Online: list the repo once, fetch what ``files`` needs; an unreachable Hub falls back to the cache."""
    from huggingface_hub.errors import (
        DisabledRepoError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        wanted = select_files(list_repo_files(repo_id, revision=revision, token=token), files)  # type: ignore[arg-type]
        return download_files(repo_id, wanted, revision=revision, cache_dir=cache_dir, token=token)
    except GatedRepoError:
        raise CheckpointError(
            f"{where}: the repo is gated: accept its conditions on https://huggingface.co/{repo_id} "
            "and log in (`hf auth login`) or pass token="
        ) from None
    except RevisionNotFoundError:
        raise CheckpointError(f"{where}: the repo has no such revision on the Hugging Face Hub") from None
    except RepositoryNotFoundError:
        raise CheckpointError(
            f"{where}: no such repo on the Hugging Face Hub (or it is private: log in with `hf auth login` "
            "or pass token=)"
        ) from None
    except DisabledRepoError:
        raise CheckpointError(f"{where}: the repo has been disabled on the Hugging Face Hub") from None
    except HfHubHTTPError as err:
        status = getattr(getattr(err, "response", None), "status_code", None)
        if status in (401, 403):
            raise CheckpointError(
                f"{where}: access denied by the Hugging Face Hub ({status}): log in with `hf auth login` or pass token="
            ) from None
        reason = f"the Hugging Face Hub answered {error_summary(err, 120)}"
    except OfflineModeIsEnabled:
        reason = "offline"
    except Exception as err:  # noqa: BLE001 - connection errors have many types (httpx, OSError, ...)
        if not _is_connection_error(err):
            raise
        reason = f"the Hugging Face Hub could not be reached ({error_summary(err, 120)})"
    return _cached_snapshot(repo_id, revision, cache_dir, reason=reason)
