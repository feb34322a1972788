"""`nas data verify | inspect | download`."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.options import Parser, add_data_options, add_split_option
from nas.cli.output import console, data_dir, error_console, say
from nas.core.errors import NasError
from nas.features.extract import FeatureConfig, compute_frames


def add_data_commands(commands) -> None:
    """nas data verify | inspect | download"""
    data = commands.add_parser("data", help="verify, inspect or download the FSDD recordings")
    actions = data.add_subparsers(dest="data_command", required=True, metavar="ACTION", parser_class=Parser)
    verify = actions.add_parser("verify", help="check count, format, labels and checksums; print a summary table")
    add_data_options(verify, cache=False)
    verify.add_argument("--checksums", help="sha256sum file (default: SHA256SUMS beside the data, else the bundled v1.0.10 list)")
    verify.add_argument("--allow-subset", action="store_true", help="accept a partial copy (missing files are not an error)")
    verify.set_defaults(command="data verify")
    inspect = actions.add_parser("inspect", help="show a split's parts, or one file's details; --html: a page of the whole dataset")
    add_data_options(inspect, cache=False)
    add_split_option(inspect)
    inspect.add_argument("file", nargs="*", help="recording file names to describe (e.g. 3_theo_12.wav)")
    inspect.add_argument(
        "--html",
        metavar="FILE",
        help="write a page of the dataset: durations, counts, levels, the split's parts, MFCC images and every file failing a check "
        "(default: no page)",
    )
    inspect.set_defaults(command="data inspect")
    download = actions.add_parser("download", help="fetch FSDD v1.0.10 (recordings only) and verify it")
    download.add_argument("--dest", help="target folder (default: the project's data/fsdd/recordings)")
    download.add_argument("--url", help="archive address (default: the v1.0.10 tag archive on GitHub)")
    download.add_argument("--force", action="store_true", help="replace recordings that are already there")
    download.set_defaults(command="data download")


def cmd_data_verify(args: argparse.Namespace) -> int:
    from nas.data.verify import verify_data
    from nas.report.tables import recordings_table

    folder = data_dir(args)
    report = verify_data(folder, Path(args.checksums) if args.checksums else None, args.allow_subset)
    console.print(recordings_table([w.recording for w in report.waveforms], {w.recording.name: w.duration_s for w in report.waveforms}))
    say(f"checksums: {report.checksums_matched} of {len(report.waveforms)} files match {report.checksum_file}")
    for problem in report.problems:
        say(problem, error_console)
    if report.problems:
        raise NasError(f"{folder}: verification failed with {len(report.problems)} problem(s), listed above")
    say(f"OK: {len(report.waveforms)} recordings in {folder} verified")
    return 0


def cmd_data_inspect(args: argparse.Namespace) -> int:
    from nas.data.dataset import list_recordings, make_split, read_wav
    from nas.report.tables import recording_table, split_table

    folder = data_dir(args)
    if args.html:
        from nas.report.datainspect import inspect_data
        from nas.report.datapage import data_page

        overview = inspect_data(folder, args.split)
        data_page(overview).write(Path(args.html))
        say(
            f"wrote {args.html}: {len(overview.files)} recordings, {len(overview.failed)} failing a check, "
            f"{len(overview.flagged)} flagged (clipped or quiet)"
        )
        for name, what in overview.failed:
            say(f"{name}: {what}", error_console)
        return 0
    recordings = list_recordings(folder)
    if not args.file:
        console.print(split_table(make_split(recordings, args.split), str(folder)))
        return 0

    by_name = {r.name: r for r in recordings}
    for name in args.file:
        if Path(name).name not in by_name:
            raise NasError(f"{name}: no such recording in {folder}")
        wave = read_wav(by_name[Path(name).name])
        console.print(recording_table(wave, compute_frames([wave], FeatureConfig())[0]))
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

    from nas.data.dataset import PROJECT_DATA_DIR
    from nas.data.download import FSDD_URL, download

    dest = Path(args.dest) if args.dest else PROJECT_DATA_DIR
    with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("FSDD v1.0.10", total=None)
        report = download(dest, args.url or FSDD_URL, args.force, lambda done, total: progress.update(task, completed=done, total=total))
    say(f"OK: {len(report.waveforms)} recordings verified in {dest}")
    return 0
