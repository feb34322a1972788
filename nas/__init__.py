"""nas: hardware-aware neural architecture search for tiny fixed-point recurrent classifiers."""

__version__ = "0.1.0"
