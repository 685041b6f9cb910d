"""The command declarations: every data, pretraining and model-utility command keeps its arguments, and the
shared building blocks of :mod:`luke.command_args` behave as the commands rely on."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from luke.cli import build_parser, main
from luke.command_args import (
    add_command,
    add_int_options,
    add_json_flag,
    add_no_progress,
    add_num_workers,
    add_paths,
    positive_int,
    timed,
)

# command -> (positional arguments, options), in --help order
COMMANDS = {
    "convert": (
        ["archive", "output_dir"],
        [
            "--no-entity-aware-attention",
            "--tokenizer",
            "--task",
            "--task-checkpoint",
            "--labels",
            "--overwrite",
            "--revision",
        ],
    ),
    "info": (["checkpoint"], ["--revision", "--system", "--json"]),
    "build-dump-db": (["dump_file", "out_file"], ["--num-workers", "--chunk-size", "--no-progress"]),
    "build-entity-vocab": (
        ["dump_db", "out_file"],
        ["--vocab-size", "--min-count", "--white-list", "--white-list-only", "--language"],
    ),
    "build-pretraining-dataset": (
        ["dump_db", "tokenizer", "entity_vocab", "out_dir"],
        [
            "--revision",
            "--max-seq-length",
            "--max-entity-length",
            "--max-mention-length",
            "--min-sentence-length",
            "--include-unk-entities",
            "--skip-unk-entities",
            "--include-sentences-without-entities",
            "--abstract-only",
            "--sentence-splitter",
            "--language",
            "--seed",
            "--max-num-documents",
            "--num-workers",
            "--num-shards",
            "--overwrite",
            "--no-progress",
        ],
    ),
    "data-stats": (["out_dir"], ["--json"]),
    "build-mention-db": (
        ["dump_db", "out_file"],
        ["--max-mention-words", "--min-link-count", "--any-target", "--exclude-pages-from", "--no-progress"],
    ),
    "build-ed-dataset": (
        ["dump_db", "out_file"],
        ["--pages-from", "--page-ids", "--exclude-pages-from", "--max-documents", "--articles-only", "--no-progress"],
    ),
    "pretrain": (["config", "overrides"], ["--resume"]),
    "evaluate-pretraining": (
        ["model", "dataset"],
        [
            "--revision",
            "--batch-size",
            "--train-dataset",
            "--max-items",
            "--seed",
            "--precision",
            "--json",
            "--no-progress",
        ],
    ),
    "plot-training": (["run_dir"], ["--out"]),
    "split-pretraining-dataset": (["dataset", "train_out", "heldout_out"], ["--heldout-fraction", "--seed"]),
    "link": (
        [],
        [
            "--model",
            "--mention-db",
            "--input",
            "--output",
            "--inference",
            "--min-link-prob",
            "--max-candidates",
            "--batch-size",
            "--mixed-precision",
            "--revision",
            "--no-progress",
        ],
    ),
}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_lists_every_argument(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    positionals, options = COMMANDS[command]
    parser = _subparsers()[command]
    assert [a.dest for a in parser._actions if not a.option_strings] == positionals
    assert [a.option_strings[-1] for a in parser._actions if a.option_strings][1:] == options  # after -h
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: luke {command} ")
    for name in [*positionals, *options]:
        assert name in out
    assert parser.description and " ".join(parser.description.split()) in " ".join(out.split())


def test_top_level_help_has_each_command_one_line_summary() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help for action in sub._choices_actions}
    for command in COMMANDS:
        assert helps[command] and "\n" not in helps[command]
    assert helps["build-dump-db"].startswith("step 1: ")


def test_defaults_and_types_the_commands_rely_on() -> None:
    parsers = _subparsers()
    args = parsers["build-pretraining-dataset"].parse_args(["db", "tok", "vocab", "out"])
    assert (args.max_seq_length, args.max_entity_length, args.max_mention_length) == (512, 128, 30)
    assert args.include_unk_entities is True and args.num_workers == max(1, os.cpu_count() or 1)
    assert (
        parsers["build-pretraining-dataset"]
        .parse_args(["a", "b", "c", "d", "--skip-unk-entities"])
        .include_unk_entities
        is False
    )
    args = parsers["build-mention-db"].parse_args(["db", "out"])
    assert (args.max_mention_words, args.min_link_count, args.no_progress) == (20, 1, False)
    assert parsers["evaluate-pretraining"].parse_args(["m", "d"]).batch_size == 16
    assert parsers["build-entity-vocab"].parse_args(["db", "v", "-w", "a", "-w", "b"]).white_list == [
        Path("a"),
        Path("b"),
    ]


def test_positive_int_rejects_zero_with_the_old_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert positive_int("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="must be at least 1"):
        positive_int("0")
    with pytest.raises(SystemExit):
        main(["build-dump-db", "in.xml", "out.sqlite", "--num-workers", "x"])
    assert "argument --num-workers: invalid _workers value: 'x'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["build-mention-db", "db", "out", "--min-link-count", "0"])
    assert "argument --min-link-count: must be at least 1" in capsys.readouterr().err


def test_add_command_splits_summary_and_description() -> None:
    parser = argparse.ArgumentParser(prog="x")
    sub = parser.add_subparsers(dest="command")

    def handler(args: argparse.Namespace) -> int:
        return 0

    p = add_command(sub, "go", handler, "one line\n\n    Longer text\n    over two lines.\n    ")
    assert p.description == "Longer text\nover two lines." and p.get_default("func") is handler
    assert sub._choices_actions[-1].help == "one line"
    assert add_command(sub, "short", handler, "only a summary").description is None


def test_argument_helpers() -> None:
    parser = argparse.ArgumentParser()
    add_paths(parser, first="the first", second=None)
    add_int_options(parser, ("--a", 1, "an a"), ("--b", None, "a b"), type=positive_int)
    add_num_workers(parser, "workers", "; note")
    add_no_progress(parser)
    add_json_flag(parser, help="print JSON")
    args = parser.parse_args(["x", "y", "--b", "4"])
    assert (str(args.first), str(args.second), args.a, args.b) == ("x", "y", 1, 4)
    assert args.num_workers >= 1 and args.no_progress is False and args.json is False
    text = parser.format_help()
    assert "workers (default: number of CPUs, here" in text and "; note" in text
    assert "do not show a progress bar" in text and "print JSON" in text
    with pytest.raises(SystemExit):
        parser.parse_args(["x", "y", "--a", "0"])


def test_timed() -> None:
    result, seconds = timed(lambda a, b=0: a + b, 2, b=3)
    assert result == 5 and seconds >= 0


def test_seed_options_name_themselves(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["split-pretraining-dataset", "d", "a", "b", "--seed", "-1"],
        ["evaluate-pretraining", "m", "d", "--seed", "-1"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert "argument --seed: must be between 0 and 4,294,967,295, got -1" in capsys.readouterr().err
