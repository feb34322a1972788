"""nas: hardware-aware neural architecture search for tiny fixed-point recurrent classifiers.

The Python API (nas.api, docs/api.md) is importable from here: nas.search, nas.load_study,
nas.train, nas.memory, nas.export and nas.evaluate. It is loaded on first use, so `import nas`
stays cheap and, like every nas module, changes no global state.
"""

from nas.core.version import __version__

_API = ("search", "load_study", "train", "memory", "export", "evaluate", "SearchResult", "ExportResult")
_API += ("ModelConfig", "QuantConfig", "FeatureConfig", "TrainConfig")  # what the functions take
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from nas import api

        return getattr(api, name)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
