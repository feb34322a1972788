"""The one exception type that means "the user gave us something we cannot use"."""


class NasError(Exception):
    """Bad input (file, option or value). The CLI prints it as one line and exits with code 2."""


EXIT_BAD_INPUT = 2
