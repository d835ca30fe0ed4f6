"""The report of ``skctd run``: a CascadeEvaluation written to a folder."""

from skctd.report._write import write_report

__all__ = ["write_report"]
