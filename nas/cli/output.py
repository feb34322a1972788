"""What every command shares: the consoles and how they print, and the data folder, feature
cache and study that the options name."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from nas.core.errors import NasError
from nas.features.extract import FeatureCache
from nas.study.settings import StudyLocation

# Logs and pipes get a wide console so tables keep their columns; terminals use their own width.
console = Console() if Console().is_terminal else Console(width=200)
error_console = Console(stderr=True)
EXIT_INTERRUPTED = 130
EXIT_CHECK_FAILED = 1  # a check failed: over the budget, C that differs from the engine (docs/cli.md)
JSON_SCHEMA = "nas-cli-v1"  # the --json documents' schema (docs/cli.md); a change of meaning changes the name


def say(text: str, to=console) -> None:
    to.print(text, markup=False, highlight=False, soft_wrap=True)


def json_mode(args: argparse.Namespace) -> bool:
    """--json: stdout holds the one JSON document only, so everything else the command prints
    (progress, warnings, tables) goes to stderr."""
    wanted = bool(getattr(args, "json", False))
    if wanted:
        console.file = sys.stderr
    return wanted


def end_json_mode() -> None:
    """Back to stdout (a console without a file writes to whatever sys.stdout is then)."""
    console.file = None  # type: ignore[assignment]


def print_json(command: str, payload: dict) -> None:
    """The command's result as one JSON document on stdout: {"schema", "command", ...payload}."""
    document = {"schema": JSON_SCHEMA, "command": command} | payload
    sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
    sys.stdout.flush()


def feature_cache(args: argparse.Namespace) -> FeatureCache:
    return FeatureCache.at(args.cache_dir, args.no_cache)


def data_dir(args: argparse.Namespace) -> Path:
    from nas.data.dataset import find_data_dir

    return find_data_dir(args.data_dir)


def optional_data_dir(args: argparse.Namespace) -> Path | None:
    try:
        return data_dir(args)
    except NasError:
        return None


def study_location(args: argparse.Namespace):
    return StudyLocation(args.study, args.storage, Path(args.results_dir))


def trial_checkpoint(record, study, location, args: argparse.Namespace) -> Path:
    """A trial's checkpoint on this host (fetched from the study's artifact store when another host trained it)."""
    from nas.study.artifacts import local_checkpoint, study_store

    return local_checkpoint(record, study_store(study, args.artifacts), location)
