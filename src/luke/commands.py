"""Model utility commands: ``luke info`` and ``luke convert`` (filled in by the checkpoint module)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Placeholder until the checkpoint commands land."""
