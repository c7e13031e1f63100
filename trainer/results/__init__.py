"""Results from stored runs and outputs: ensembles, the paper's report and its renderers, the teacher-count sweep,
comparisons with their significance, breakdowns by metadata, calibration and label review."""

from .breakdown import DIMENSIONS, breakdown, cycle_metadata, metric_breakdown, subgroup_metrics
from .calibration import DEFAULT_BINS, calibration, collect_calibration, ece, softmax
from .compare import (
    ComparisonError, System, compare_systems, format_comparison, format_p, parse_system, resolve_system,
)
from .ensembles import (
    EnsembleError, EnsembleOutputs, ensemble_curve, ensemble_logits, ensemble_score, group_runs, resolve_runs,
)
from .label_review import DEFAULT_MIN_CONFIDENCE, format_review, label_review
from .published import PUBLISHED, PUBLISHED_BTS_ENSEMBLES, PUBLISHED_BTS_STUDENTS, published_name
from .render import FORMATS, jsonable, render, render_csv, render_latex, render_markdown
from .report import (
    ENSEMBLE_KS, TEST_SELECTION_NOTE, ReportError, build_report, collect_ensembles, collect_groups,
    collect_hard_vs_soft, collect_published,
)
from .significance import (
    EXACT_BELOW, binomial_two_sided, chi2_1_survival, cycle_patterns, mcnemar, paired_bootstrap, permutation_test,
    regularized_beta, resample_patterns, seed_test, t_two_sided, welch,
)
from .sweep import (
    DEFAULT_KS, PlannedRun, SweepError, SweepPlan, default_prefix, format_sweep_table, parse_ks, plan_sweep,
    submit_sweep, sweep_group, sweep_table,
)

__all__ = [
    "DEFAULT_BINS", "DEFAULT_KS", "DEFAULT_MIN_CONFIDENCE", "DIMENSIONS", "ENSEMBLE_KS", "EXACT_BELOW", "FORMATS",
    "PUBLISHED", "PUBLISHED_BTS_ENSEMBLES", "PUBLISHED_BTS_STUDENTS", "TEST_SELECTION_NOTE", "ComparisonError",
    "EnsembleError", "EnsembleOutputs", "PlannedRun", "ReportError", "SweepError", "SweepPlan", "System",
    "binomial_two_sided", "breakdown", "build_report", "calibration", "chi2_1_survival", "collect_calibration",
    "collect_ensembles", "collect_groups", "collect_hard_vs_soft", "collect_published", "compare_systems",
    "cycle_metadata", "cycle_patterns", "default_prefix", "ece", "ensemble_curve", "ensemble_logits",
    "ensemble_score", "format_comparison", "format_p", "format_review", "format_sweep_table", "group_runs",
    "jsonable", "label_review", "mcnemar", "metric_breakdown", "paired_bootstrap", "parse_ks", "parse_system",
    "permutation_test", "plan_sweep", "published_name", "regularized_beta", "render", "render_csv", "render_latex",
    "render_markdown", "resample_patterns", "resolve_runs", "resolve_system", "seed_test", "softmax",
    "subgroup_metrics", "submit_sweep", "sweep_group", "sweep_table", "t_two_sided", "welch",
]
