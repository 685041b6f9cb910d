"""The layering rules of docs/architecture.md, checked on the source tree.

- ``luke.errors`` is the ground floor: it imports nothing from the package.
- Only the command line imports ``luke.cli``: no library module does.
- The Wikipedia pipeline does not import fine-tuning code (no upward import).
- Every error the package defines for bad input is a :class:`luke.errors.LukeError`, and the CLI turns it
  into one ``luke CMD: error: ...`` line with exit status 2.
- No function in ``src/`` is longer than 100 lines.
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

import luke.cli
import luke.errors as errors
from luke.cli import main

SRC = Path(__file__).resolve().parents[1] / "src" / "luke"
MAX_FUNCTION_LINES = 100


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return out


def _imported(module_name: str, tree: ast.Module) -> set[str]:
    """Every ``luke.*`` module a module imports, at any depth (lazy imports inside functions included)."""
    names = set()
    package = module_name if module_name.count(".") == 0 else module_name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                names.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                names.add(node.module)
    return {n for n in names if n == "luke" or n.startswith("luke.")}


MODULES = _modules()


def test_the_scan_sees_the_package() -> None:
    assert {"luke.errors", "luke.cli", "luke.modeling", "luke.wikipedia.dump_db"} <= set(MODULES)


def test_errors_module_is_the_ground_floor() -> None:
    assert _imported("luke.errors", MODULES["luke.errors"]) == set()


def test_no_library_module_imports_the_cli() -> None:
    offenders = [
        name
        for name, tree in MODULES.items()
        if name not in ("luke.cli", "luke.__main__") and "luke.cli" in _imported(name, tree)
    ]
    assert offenders == []


def test_wikipedia_does_not_import_finetuning() -> None:
    offenders = {
        name: sorted(i for i in _imported(name, tree) if i.startswith("luke.finetuning"))
        for name, tree in MODULES.items()
        if name.startswith("luke.wikipedia")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_no_function_over_100_lines() -> None:
    long = []
    for name, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert long == []


def test_every_exception_class_in_the_package_is_a_luke_error() -> None:
    """Exception classes are defined only in luke.errors (others are re-exported names)."""
    defined_elsewhere = []
    for name, tree in MODULES.items():
        if name == "luke.errors":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(b, ast.Name) and b.id.endswith(("Error", "Exception")) for b in node.bases
            ):
                defined_elsewhere.append(f"{name}.{node.name}")
    assert defined_elsewhere == []
    for cls_name in errors.__all__:
        cls = getattr(errors, cls_name)
        if not isinstance(cls, type):  # helpers for building messages (shorten)
            continue
        assert issubclass(cls, errors.LukeError) and issubclass(cls, ValueError)


def test_data_error_names_file_and_line() -> None:
    err = errors.DataError("data/train.json", "field 'text' must be str", 12)
    assert str(err) == "data/train.json:12: field 'text' must be str"
    assert err.path == Path("data/train.json") and err.line == 12
    assert str(errors.DataError("data/x.conll", "empty")) == "data/x.conll: empty"
    plain = errors.DataError("two datasets have different entity vocabularies")
    assert str(plain) == "two datasets have different entity vocabularies" and plain.path is None


@pytest.mark.parametrize(
    "cls", [errors.DataError, errors.DumpError, errors.DatasetError, errors.ConfigError, errors.CheckpointError]
)
def test_cli_turns_luke_errors_into_one_line(
    cls: type[errors.LukeError], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fail(args: object) -> int:
        raise cls("something the user gave us is wrong")

    def register(sub) -> None:  # a stand-in command module with one failing command
        sub.add_parser("fail").set_defaults(func=fail)

    monkeypatch.setitem(sys.modules, "_luke_test_commands", types.SimpleNamespace(register=register))
    monkeypatch.setattr(luke.cli, "COMMAND_MODULES", ["_luke_test_commands"])
    assert main(["fail"]) == 2
    assert capsys.readouterr().err == "luke fail: error: something the user gave us is wrong\n"


def test_cli_reports_a_real_command_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("luke info: error: ") and err.count("\n") == 1 and "missing" in err
