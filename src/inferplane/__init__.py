"""inferplane: the Gateway API Inference Extension and llm-d stack — validate, run locally, render, benchmark."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inferplane")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
