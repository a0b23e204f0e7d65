"""Reports of a goal's analysis for people: one self-contained HTML file (`render_report`, `write_report`).

See `otel_decisions.report.html` for what the page shows and why it fetches nothing.
"""

from otel_decisions.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
