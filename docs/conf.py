"""Sphinx configuration of the skctd documentation.

Build (from the repository root, no network needed):

    HF_HUB_OFFLINE=1 python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

import os
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

# the documentation and the gallery never touch the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE / "sphinxext"))

import skctd

project = "skctd"
author = "skctd developers"
copyright = "skctd developers, BSD-3-Clause"
release = skctd.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax copied into _static: math renders offline
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"
default_role = "literal"

# -- autodoc / autosummary / numpydoc -------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # types are written in the numpydoc sections
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# No intersphinx: CI has no network, and intersphinx would need to download the
# inventories of Python, NumPy and scikit-learn.

# -- sphinx-gallery --------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": "plot_",  # every example is executed
    "ignore_pattern": r"(__init__|_helpers)\.py",
    "abort_on_example_error": True,
    "image_scrapers": ("matplotlib",),
    "matplotlib_animations": False,
    "within_subsection_order": "gallery_order.ExampleOrder",
    "download_all_examples": False,
    "plot_gallery": "True",
    "remove_config_comments": True,
    "show_memory": False,
    # "Gallery examples" at the bottom of each API page
    "doc_module": ("skctd",),
    "backreferences_dir": "generated/backreferences",
}

# Gallery scripts print to stdout; silence noisy third-party warnings so that
# ``-W`` only fails on our own problems.
warnings.filterwarnings("ignore", category=UserWarning, message=".*non-interactive.*")
warnings.filterwarnings("ignore", message=".*FigureCanvasAgg is non-interactive.*")

# -- HTML ------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skctd {release}"
html_static_path = []
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}

# -- references ------------------------------------------------------------------
# Every cross-reference must resolve (``-W`` turns a broken one into an error).
nitpicky = True
# Third-party targets have no inventory here (no intersphinx: the build is offline),
# so references to them cannot resolve; they are the only ones ignored.
nitpick_ignore_regex = [
    (r"py:.*", r"(sklearn|numpy|scipy|pandas|matplotlib|joblib|json|torch)(\..*)?"),
]


def _lookup(path):
    """The Python object at a dotted path, or None."""
    import importlib

    parts = path.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _resolve_own_names(app, env, node, contnode):
    """Resolve a reference to a skctd object under the name it is documented as.

    A docstring may name an object where it is defined (``skctd.experts.BaseExpert``)
    or relative to its module (``calibrate_threshold`` inside skctd.calibration),
    while the API reference documents it once, under its public name
    (``skctd.BaseExpert``). Same object, same page: the reference goes there. A name
    that matches no documented object stays unresolved, and nitpicky reports it.
    """
    if node.get("refdomain") != "py" or not node.get("reftarget"):
        return None
    py = env.get_domain("py")
    index = getattr(env, "_skctd_documented", None)
    if index is None:
        by_id = {}
        for name in py.objects:
            obj = _lookup(name)
            if obj is not None:
                by_id.setdefault(id(obj), name)
        index = env._skctd_documented = by_id
    by_id = index
    target = node["reftarget"].lstrip(".~")
    module = node.get("py:module") or "skctd"
    cls = node.get("py:class")
    candidates = [target, f"skctd.{target}", f"{module}.{target}"]
    if cls:
        candidates.append(f"{module}.{cls}.{target}")
    name = None
    for candidate in candidates:
        obj = _lookup(candidate) if candidate.startswith("skctd") else None
        if obj is not None and id(obj) in by_id:
            name = by_id[id(obj)]
            break
    if name is None:  # e.g. a summary line shown on a page of another module
        matches = [n for n in py.objects if n.endswith(f".{target}")]
        name = matches[0] if len(matches) == 1 else None
    if name is None:
        return None
    return py.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], name, node, contnode
    )


def setup(app):
    app.connect("missing-reference", _resolve_own_names)
