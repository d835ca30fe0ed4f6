"""The ``skctd`` command."""

from skctd.cli._main import (
    JobConfig,
    build_parser,
    default_cache_dir,
    main,
    parse_expert_spec,
    run_job,
)

__all__ = [
    "JobConfig",
    "build_parser",
    "default_cache_dir",
    "main",
    "parse_expert_spec",
    "run_job",
]
