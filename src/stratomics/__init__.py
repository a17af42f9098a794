"""stratomics: patient subgroups and biomarkers from multi-omics clinical cohorts."""

from importlib.metadata import PackageNotFoundError, version

from stratomics.errors import StratomicsInputError

try:
    __version__ = version("stratomics")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = ["StratomicsInputError", "__version__"]
