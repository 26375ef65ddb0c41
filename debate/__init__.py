"""debate: proposer, critic and judge agents debate therapeutic hypotheses against a KB."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("debate")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
