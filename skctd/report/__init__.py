"""The report of ``skctd run``: a CascadeEvaluation written to a folder."""

from skctd.report._decision import decision_summary
from skctd.report._write import write_report

__all__ = ["decision_summary", "write_report"]
