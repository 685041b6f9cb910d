"""luke.files (reading user files, checking and writing outputs) and the CLI's last line for each kind of
failure: a user error is one ``luke CMD: error:`` line with exit 2, anything else is a bug and says so."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from conftest import unreadable_file
from luke import cli
from luke.errors import DataError, OutputError, shorten
from luke.files import (
    atomic_output,
    check_output,
    read_json,
    read_text,
    sweep_leftovers,
    temporary_path,
    text_lines,
    write_text_atomic,
)

DEAD_PID = 2**22 + 123  # above the default pid_max range of a container: no such process


def test_read_text_names_file_and_line_of_a_bad_byte(tmp_path: Path) -> None:
    path = tmp_path / "vocab.txt"
    path.write_bytes(b"one\ntwo\nthr\xffee\n")
    with pytest.raises(DataError, match=r"vocab.txt:3: not UTF-8 text \(byte 0xff"):
        read_text(path)
    with pytest.raises(DataError, match=r"vocab.txt:3: not UTF-8"):
        list(text_lines(path))
    good = tmp_path / "good.txt"
    good.write_text("a\r\nb\n")
    assert list(text_lines(good)) == [(1, "a"), (2, "b")]


def test_read_errors_for_missing_folder_and_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.json: no such file"):
        read_json(tmp_path / "nope.json")
    with pytest.raises(DataError, match="is a folder, expected a file"):
        read_text(tmp_path)
    bad = tmp_path / "metadata.json"
    bad.write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(DataError, match=r"metadata.json:3: not valid JSON"):
        read_json(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object at the top level, got list"):
        read_json(bad, dict)
    assert read_json(bad, list) == [1, 2]


def test_shorten_cuts_long_values() -> None:
    assert shorten("abc") == "abc"
    cut = shorten("x" * 50_000_000, 40)
    assert len(cut) < 80 and cut.endswith("(50,000,000 characters)")
    assert shorten([1, 2]) == "[1, 2]"


def test_check_output_kinds(tmp_path: Path) -> None:
    folder, file = tmp_path / "dir", tmp_path / "file"
    folder.mkdir()
    file.write_text("x")
    assert check_output(tmp_path / "new" / "deeper" / "out.db", kind="file") == tmp_path / "new/deeper/out.db"
    with pytest.raises(OutputError, match="is a folder; give a file path"):
        check_output(folder, kind="file", overwrite=True)
    with pytest.raises(OutputError, match="exists and is not a folder"):
        check_output(file, kind="dir", exist_ok=True)
    with pytest.raises(OutputError, match="--output .* already exists; pass --overwrite"):
        check_output(file, kind="file", what="--output")
    check_output(file, kind="file", overwrite=True)
    check_output(folder, kind="dir", exist_ok=True)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output(file / "out.db", kind="file")


def test_check_output_read_only_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes anywhere: let the check see what a normal user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
    try:
        with pytest.raises(OutputError, match="permission denied"):
            check_output(ro / "out", kind="dir")
    finally:
        ro.chmod(0o755)


def test_atomic_output_file_and_folder(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert out.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    write_text_atomic(out, "new")
    assert out.read_text() == "new"

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "old.bin").write_text("old")
    with atomic_output(folder, kind="dir") as tmp:
        assert tmp.is_dir() and tmp.name.startswith(".model.tmp-")
        (tmp / "new.bin").write_text("new")
    assert [p.name for p in folder.iterdir()] == ["new.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.json"]


def test_sweep_removes_only_dead_writers_leftovers(tmp_path: Path) -> None:
    out = tmp_path / "db.sqlite"
    dead_file = tmp_path / f".db.sqlite.tmp-{DEAD_PID}"
    dead_dir = tmp_path / f".db.sqlite.staging-{DEAD_PID}"
    mine = temporary_path(out)
    other = tmp_path / f".other.tmp-{DEAD_PID}"
    dead_file.write_text("x")
    dead_dir.mkdir()
    (dead_dir / "part").write_text("x")
    mine.write_text("x")
    other.write_text("x")
    assert sorted(sweep_leftovers(out)) == sorted([dead_file, dead_dir])
    assert mine.exists() and other.exists() and not dead_file.exists() and not dead_dir.exists()


def _run_handler(handler, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("probe").set_defaults(func=handler)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    rc = cli.main(["probe"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (PermissionError(13, "Permission denied", "/x/out.db"), "luke probe: error: /x/out.db: permission denied"),
        (IsADirectoryError(21, "Is a directory", "/x/out"), "luke probe: error: /x/out: is a directory"),
        (OSError(28, "No space left on device"), "luke probe: error: no space left on device"),
        (FileNotFoundError("no config file at m/config.json"), "luke probe: error: no config file at m/config.json"),
        (FileNotFoundError(2, "No such file or directory", "a", None, "b"), "error: a -> b: no such file or directory"),
        (OutputError("--output x is a folder"), "luke probe: error: --output x is a folder"),
        (DataError("f.txt", "bad", 3), "luke probe: error: f.txt:3: bad"),
    ],
)
def test_cli_user_errors_are_one_line(
    error: Exception, expected: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(args: argparse.Namespace) -> int:
        raise error

    rc, err = _run_handler(handler, capsys, monkeypatch)
    assert rc == 2
    assert err.count("\n") == 1 and expected in err


def test_cli_bug_prints_traceback_and_says_so_last(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(args: argparse.Namespace) -> int:
        return {}["missing"]

    rc, err = _run_handler(handler, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert rc == 1
    assert lines[0].startswith("Traceback")
    assert lines[-1].startswith("luke probe: internal error (a bug in luke") and "KeyError: 'missing'" in lines[-1]


def test_cli_cuts_a_huge_message(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(args: argparse.Namespace) -> int:
        raise DataError("big.txt", "bad value " + "x" * 100_000, 1)

    rc, err = _run_handler(handler, capsys, monkeypatch)
    assert rc == 2 and len(err) < 2100 and "characters)" in err


def test_outputs_through_symbolic_links(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.mkdir()
    (target / "old.bin").write_text("old")
    link = tmp_path / "link"
    link.symlink_to(target)
    check_output(link, kind="dir", overwrite=True)
    with atomic_output(link, kind="dir") as tmp:
        (tmp / "new.bin").write_text("new")
    assert link.is_symlink() and [p.name for p in target.iterdir()] == ["new.bin"]

    dangling = tmp_path / "dangling.db"
    dangling.symlink_to(tmp_path / "missing" / "out.db")
    assert check_output(dangling, kind="file") == dangling
    write_text_atomic(dangling, "db")
    assert (tmp_path / "missing" / "out.db").read_text() == "db" and dangling.is_symlink()


def test_a_file_that_fails_to_read_is_a_data_error(tmp_path: Path) -> None:
    path = unreadable_file(tmp_path / "train.txt")
    with pytest.raises(DataError, match=r"train.txt(:1)?: cannot be read"):
        list(text_lines(path))
    with pytest.raises(DataError, match=r"train.txt: cannot be read"):
        read_text(path)


def test_cli_error_from_a_multi_line_message_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def handler(args: argparse.Namespace) -> int:
        raise DataError("w.bin", "cannot read (Weights only load failed.\n\n\x1b[1mdo this\x1b[0m only if trusted)")

    rc, err = _run_handler(handler, capsys, monkeypatch)
    assert (
        rc == 2
        and err == "luke probe: error: w.bin: cannot read (Weights only load failed. | do this only if trusted)\n"
    )


def test_check_output_refuses_to_replace_an_input(tmp_path: Path) -> None:
    src = tmp_path / "model"
    src.mkdir()
    (src / "config.json").write_text("{}")
    with pytest.raises(OutputError, match="would replace the input"):
        check_output(src, kind="dir", overwrite=True, inputs=[src])
    with pytest.raises(OutputError, match="would replace the folder holding the input"):
        check_output(tmp_path, kind="dir", overwrite=True, inputs=[None, src / "config.json"])
    link = tmp_path / "link"
    link.symlink_to(src)
    with pytest.raises(OutputError, match="would replace the input"):
        check_output(link, kind="dir", overwrite=True, inputs=[src])
    check_output(tmp_path / "other", kind="dir", inputs=[src])


def test_cli_error_raised_in_a_data_loader_worker_is_its_own_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    class Bad(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, i: int) -> int:
            raise DataError(f"dataset item {i} (0-based): word id 7 is outside")

    def handler(args: argparse.Namespace) -> int:
        list(torch.utils.data.DataLoader(Bad(), num_workers=1))
        return 0

    rc, err = _run_handler(handler, capsys, monkeypatch)
    assert rc == 2 and err == "luke probe: error: dataset item 0 (0-based): word id 7 is outside\n", err


def test_sigterm_removes_temporary_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal
    import time

    out = tmp_path / "out.db"

    def handler(args: argparse.Namespace) -> int:
        with atomic_output(out) as tmp:
            tmp.write_text("half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(10)  # interrupted by the signal
        return 0

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as exit_info:
        _run_handler(handler, capsys, monkeypatch)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_forked_children_get_the_default_sigterm_back(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import signal

    def handler(args: argparse.Namespace) -> int:
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None)  # ours, in the command
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if SIGTERM would kill it at once
            os._exit(0 if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL else 1)
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)

    rc, _ = _run_handler(handler, capsys, monkeypatch)
    assert rc == 0
