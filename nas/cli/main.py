"""The `nas` command: the parser of every command group (nas/cli/<group>.py), and the one place
where an error becomes a message and an exit code.

Exit codes (docs/cli.md): 0 success; 1 a check failed (a configuration over its budget, exported
C that differs from the engine, an export that does not reproduce its model.json); 2 bad input
(the library raises NasError, argparse rejects a value); 130 interrupted, with finished work
saved. Nothing here imports torch until a command needs it, so `nas --help` and `nas memory`
start at once.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from nas.cli import data, export, memory, search, studies, train
from nas.cli.options import Parser
from nas.cli.output import EXIT_INTERRUPTED, end_json_mode, error_console, say
from nas.core.errors import EXIT_BAD_INPUT, NasError
from nas.core.urls import mask_passwords
from nas.core.version import __version__

HANDLERS = {
    "data verify": data.cmd_data_verify,
    "data inspect": data.cmd_data_inspect,
    "data download": data.cmd_data_download,
    "train": train.cmd_train,
    "crossval": train.cmd_crossval,
    "memory": memory.cmd_memory,
    "search": search.cmd_search,
    "studies": studies.cmd_studies,
    "pareto": studies.cmd_pareto,
    "report": studies.cmd_report,
    "export": export.cmd_export,
    "evaluate": export.cmd_evaluate,
}


def build_parser() -> Parser:
    parser = Parser(prog="nas", description="Hardware-aware architecture search for tiny fixed-point recurrent classifiers (FSDD).")
    parser.add_argument("--version", action="version", version=f"nas {__version__}")
    commands = parser.add_subparsers(dest="command_name", required=True, metavar="COMMAND", parser_class=Parser)
    groups = (
        data.add_data_commands,
        train.add_train_command,
        train.add_crossval_command,
        memory.add_memory_command,
        search.add_search_command,
        studies.add_study_commands,
        export.add_export_commands,
    )
    for add_commands in groups:
        add_commands(commands)
    return parser


# the commands that open a study: Optuna is loaded for them anyway (the others start without it)
STUDY_COMMANDS = ("search", "studies", "pareto", "report", "export", "crossval")


def quiet_libraries(command: str) -> None:
    """This process's logging, set by the command line only (importing nas changes nothing):
    Optuna's per-trial INFO lines would bury the search's own, and its experimental-feature
    warnings (the project pins Optuna 5.x and tests those features) are noise to a user. Set after
    Optuna is imported, which sets its own level."""
    if command not in STUDY_COMMANDS:
        return
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries(args.command)
    try:
        return HANDLERS[args.command](args)
    except NasError as error:
        message = mask_passwords(" ".join(str(error).split()))  # a library message may hold line breaks, or a storage URL
        say(f"nas: error: {message}", error_console)
        return EXIT_BAD_INPUT
    except OSError as error:  # a path that cannot be made, read or written: bad input, never a traceback
        where = error.filename if error.filename is not None else "a file"
        say(f"nas: error: {where}: {error.strerror or error}; expected a path this user may read and write", error_console)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        say("nas: interrupted; finished work is saved (see the paths above)", error_console)
        return EXIT_INTERRUPTED
    finally:
        end_json_mode()  # main() may run again in this process (the tests, a notebook)


if __name__ == "__main__":
    sys.exit(main())
