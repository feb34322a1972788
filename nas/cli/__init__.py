"""Layer 9, command line: parses options, calls the library and prints; one module per command
group (data, train, memory, search, studies, export), the shared options in `options`, the consoles
and --json in `output`, the parser and exit codes in `main`. The only layer that sets process-wide
state (Optuna's logging level, for its own process). Independent of nas.api.
"""
