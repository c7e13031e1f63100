"""Results from stored runs and outputs: ensembles, the paper's report and its renderers, the teacher-count sweep."""

from .ensembles import (
    EnsembleError, EnsembleOutputs, ensemble_curve, ensemble_logits, ensemble_score, group_runs, resolve_runs,
)
from .published import PUBLISHED, PUBLISHED_BTS_ENSEMBLES, PUBLISHED_BTS_STUDENTS, published_name
from .render import FORMATS, jsonable, render, render_csv, render_latex, render_markdown
from .report import (
    ENSEMBLE_KS, TEST_SELECTION_NOTE, ReportError, build_report, collect_ensembles, collect_groups,
    collect_hard_vs_soft, collect_published,
)
from .sweep import (
    DEFAULT_KS, PlannedRun, SweepError, SweepPlan, default_prefix, format_sweep_table, parse_ks, plan_sweep,
    submit_sweep, sweep_group, sweep_table,
)

__all__ = [
    "DEFAULT_KS", "ENSEMBLE_KS", "FORMATS", "PUBLISHED", "PUBLISHED_BTS_ENSEMBLES", "PUBLISHED_BTS_STUDENTS",
    "TEST_SELECTION_NOTE", "EnsembleError", "EnsembleOutputs", "PlannedRun", "ReportError", "SweepError", "SweepPlan",
    "build_report", "collect_ensembles", "collect_groups", "collect_hard_vs_soft", "collect_published",
    "default_prefix", "ensemble_curve", "ensemble_logits", "ensemble_score", "format_sweep_table", "group_runs",
    "jsonable", "parse_ks", "plan_sweep", "published_name", "render", "render_csv", "render_latex", "render_markdown",
    "resolve_runs", "submit_sweep", "sweep_group", "sweep_table",
]
