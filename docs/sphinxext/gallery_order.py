"""Order of the gallery examples: the order a reader should follow."""

from pathlib import Path

ORDER = [
    "plot_cascade_synthetic.py",
    "plot_activation_probe.py",
    "plot_budget_curves.py",
    "plot_no_harm_certificate.py",
    "plot_grid_search.py",
    "plot_openai_judge.py",
    "plot_monitor.py",
]


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``.

    Examples listed in ``ORDER`` come first, in that order; any other example
    follows, by file name.
    """

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        rank = ORDER.index(name) if name in ORDER else len(ORDER)
        return (rank, name)

    def __repr__(self):
        return f"<{type(self).__name__}>"
