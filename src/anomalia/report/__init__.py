"""HTML reports of evaluations: sections of plots and tables in one self-contained file.

Reports draw :class:`anomalia.results.Evaluation` objects (with :mod:`anomalia.metrics` for curves); they
never fit or score.
"""

from . import diagnosis as _diagnosis  # noqa: F401  (registers the diagnosis section)
from . import images as _images  # noqa: F401  (registers the image section)
from . import series as _series  # noqa: F401  (registers the series section)
from .html import Report, build_report, render, write_report
from .sections import SECTION_BUILDERS, Plot, Section, Table, register_section

__all__ = [
    "SECTION_BUILDERS",
    "Plot",
    "Report",
    "Section",
    "Table",
    "build_report",
    "register_section",
    "render",
    "write_report",
]
