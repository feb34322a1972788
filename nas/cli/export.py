"""`nas export` and `nas evaluate`: a model out of a study (or a checkpoint), and its scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from nas.cli.options import SPLIT_HELP, add_data_options, add_json_option, add_split_option, add_study_options
from nas.cli.output import (
    EXIT_CHECK_FAILED,
    console,
    data_dir,
    error_console,
    feature_cache,
    json_mode,
    optional_data_dir,
    print_json,
    say,
    study_location,
)
from nas.core import limits
from nas.data.dataset import PARTS
from nas.device.memory import format_bytes
from nas.study.settings import (
    DEFAULT_STUDY,
)


def add_export_commands(commands) -> None:
    """nas export, nas evaluate"""
    export = commands.add_parser(
        "export", help="write a finished trial's model.pt, model.json, weights.bin, C code and README (no retraining)"
    )
    add_study_options(export, DEFAULT_STUDY)
    choice = export.add_mutually_exclusive_group(required=True)
    choice.add_argument("--trial", type=limits.TRIAL_NUMBER.parse, help="the trial number")
    choice.add_argument("--best", action="store_true", help="the most accurate trial (validation) within the study's budget")
    choice.add_argument("--max-kb", type=limits.BUDGET_KB.parse, help="the most accurate trial within this many kB")
    choice.add_argument("--checkpoint", help="a checkpoint written by 'nas train' (e.g. results/train/<run>/seed0.pt) instead of a trial")
    export.add_argument("--out", help="export folder (default: <study folder>/exports/trial-NNNN; with --checkpoint, <its folder>/export)")
    export.add_argument(
        "--no-measure",
        action="store_true",
        help="skip compiling the C (host gcc, arm-none-eabi-gcc) and the QEMU run of the golden vectors",
    )
    add_data_options(export, cache=False)
    export.set_defaults(command="export")

    evaluate = commands.add_parser("evaluate", help="score an export folder with the integer engine: accuracy, report, confusion matrix")
    evaluate.add_argument("export_dir", help="a folder written by 'nas export'")
    add_split_option(evaluate, default=None, help=f"{SPLIT_HELP} (default: the split the model was trained on)")
    evaluate.add_argument("--part", choices=PARTS, default="test", help="which part of the split")
    evaluate.add_argument("--html", help="also write the confusion matrix as a plotly heatmap page (default: no page)")
    evaluate.add_argument(
        "--c", action="store_true", help="also run the exported C (host gcc) on every file's PCM and compare with the engine"
    )
    add_json_option(evaluate, "the scores")
    add_data_options(evaluate)
    evaluate.set_defaults(command="evaluate")


def cmd_export(args: argparse.Namespace) -> int:
    from nas.bundle.export import export_checkpoint
    from nas.bundle.selection import checkpoint_source

    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
        source, confirmed = checkpoint_source(checkpoint), None
        out_dir = Path(args.out) if args.out else checkpoint.parent / "export"
    else:
        source, confirmed, out_dir = trial_source(args)
    description = export_checkpoint(source, out_dir, optional_data_dir(args), measure=not args.no_measure, confirmed=confirmed)
    what = f"trial {source.trial}" if source.trial is not None else str(source.checkpoint)
    if confirmed is not None:
        say(
            f"trial {source.trial} is confirmed: mean val {confirmed['val_mean']:.2f}%, mean test {confirmed['test_mean']:.2f}%"
            f" over seeds {', '.join(map(str, confirmed['seeds']))}"
            + (f", held-out speakers {confirmed['held_out_mean']:.2f}%" if confirmed["held_out_mean"] is not None else "")
            + f"; exporting seed {confirmed['exported_seed']} (closest to the mean on validation)"
        )
    accuracy, memory = description["accuracy"], description["memory"]
    say(
        f"exported {what} to {out_dir}: weights.bin {description['weights_bin_bytes']:,} B, "
        f"total {format_bytes(memory['total_bytes'])} (flash {memory['flash_bytes']:,} B + RAM {memory['ram_bytes']:,} B), "
        f"test {accuracy['test_correct']}/{accuracy['test_total']} (integer engine); check with: nas evaluate {out_dir} --c"
    )
    for compiler, figures in description["compiled"].items():
        if compiler == "qemu":
            say(
                f"qemu ({figures['machine']}): {figures['golden_vectors_matching']}/{figures['golden_vectors']} golden vectors identical, "
                f"about {figures['instructions_per_frame']:,} instructions per frame"
            )
        else:
            say(
                f"{compiler} -Os: .rodata {figures['rodata_bytes']:,} B, .bss {figures['bss_bytes']:,} B, "
                f".data {figures['data_bytes']:,} B, deepest stack {figures['max_stack_bytes']} B, code {figures['text_bytes']:,} B"
            )
    if not description["golden_vectors"] and description["feature_config"]["frontend"] == "integer":
        say("no golden vectors: the recordings were not found (pass --data-dir or set NAS_DATA_DIR)", error_console)
    return 0


def trial_source(args: argparse.Namespace):
    """The study trial that --trial, --best or --max-kb chooses: (ExportSource, its confirmed
    means or None, the export folder)."""
    from nas.bundle.selection import select_study_export

    location = study_location(args)
    chosen = select_study_export(location, args.trial, args.max_kb, args.artifacts)
    record = chosen.record
    if chosen.point is None and chosen.points and args.trial is None:
        say(f"trial {record.number} is not confirmed (one training, one draw): no confirmed point fits the limit "
            f"(confirmed: {', '.join(format_bytes(p.total_bytes) for p in chosen.points)})")  # fmt: skip
    out_dir = Path(args.out) if args.out else location.study_dir / "exports" / f"trial-{record.number:04d}"
    return chosen.source, chosen.confirmed, out_dir


def cmd_evaluate(args: argparse.Namespace) -> int:
    from nas.bundle.export import evaluate, load_export
    from nas.report.figures import confusion_figure
    from nas.report.tables import confusion_table

    as_json = json_mode(args)
    result = evaluate(load_export(Path(args.export_dir)), data_dir(args), args.split, args.part, feature_cache(args), run_c=args.c)
    code = EXIT_CHECK_FAILED if result.c_matches is False or result.reproduces is False else 0
    if as_json:
        print_json("evaluate", {"export_dir": args.export_dir} | result.to_dict())
        return code
    say(f"{args.export_dir}: integer engine on the {result.part} part of split '{result.split}': {result.accuracy}")
    if result.c_predicted is not None:
        same = int((result.c_predicted == result.predicted).sum())
        logits = "identical logits" if result.c_logits_identical else "LOGITS DIFFER"
        say(f"exported C (host gcc, fed the PCM): {same}/{len(result.predicted)} classes as the engine's, {logits}")
        if result.c_matches is False:
            return code
    if result.overlap:
        say(
            f"warning: {result.overlap} of these {result.accuracy.total} files were in the train part of split "
            f"'{result.trained_split}' that the model learned from; this is not a held-out score",
            error_console,
        )
    if result.reproduces is not None:
        say(f"{'reproduces' if result.reproduces else 'does not reproduce'} model.json: {result.stored.correct}/{result.stored.total}")
    say(result.classification_report())
    console.print(confusion_table(result.confusion()))
    if args.html:
        title = f"{args.export_dir}: {result.part} part of split '{result.split}', {result.accuracy}"
        confusion_figure({f"{result.part} part": result.confusion()}, title).write_html(args.html, include_plotlyjs=True)
        say(f"wrote {args.html}")
    return code
