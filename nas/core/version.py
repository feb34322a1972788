"""The version of nas, defined once: the package, exports and checkpoints all read it from here."""

__version__ = "0.1.0"
