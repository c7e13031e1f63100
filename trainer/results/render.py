"""The report as text: Markdown, CSV (one rectangular table), LaTeX or strict JSON.

Every format shows the same numbers :func:`trainer.results.report.build_report` collected; only
the layout differs. LaTeX leaves out the run ids (they are long; the CSV and JSON keep them).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Sequence

from .published import PUBLISHED, published_name, published_triplet
from .report import METRICS, ReportError, is_nan

FORMATS = ("md", "csv", "latex", "json")


def _ms(stat: dict | None, latex: bool = False, digits: int = 2) -> str:
    if not stat or stat.get("mean") is None:
        return "-"
    mean, std = stat["mean"], stat.get("std")
    if std is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}$_{{\\pm {std:.{digits}f}}}$" if latex else f"{mean:.{digits}f} ± {std:.{digits}f}"


def _num(value, digits: int = 2) -> str:
    return "-" if value is None or is_nan(value) else f"{value:.{digits}f}"


def _selection(value, flagged: bool) -> str:
    if flagged:
        return "test*" if value == "test" else f"{value} (some test*)"
    return str(value) if value is not None else "-"


def _kind_label(g: dict) -> str:
    if g["targets"] == "soft":
        return "student " + method_label(g)
    return targets_label(g)


def targets_label(g: dict) -> str:
    """What a group learnt from, without the word student (the Compare view's students section says it)."""
    if g["targets"] == "soft":
        return method_label(g)
    if g["targets"] == "hard":
        return "hard labels"
    if g["targets"] == "collab":
        weight = g.get("peer_weight")
        return f"collaborative on {g.get('representation')}, peers x{weight:g}" if isinstance(weight, float) else \
            f"collaborative on {g.get('representation')}, peers x{weight}"
    return str(g["kind"])


def method_label(g: dict) -> str:
    """How a student group learned: mode and k, then what sets it apart (preset, T, label weight, views, maps)."""
    parts = [f"{g['mode']} k={g['k']}"]
    if g.get("passes"):
        parts.append(f"views of {g['passes']}")
    if g.get("preset"):
        parts.append(f"preset {g['preset']}")
    else:
        if g.get("temperature") not in (None, 1.0):
            parts.append(f"T={g['temperature']:g}")
        if g.get("hard_weight"):
            parts.append(f"labels {g['hard_weight']:g}")
    feature = json.loads(g["feature"]) if isinstance(g.get("feature"), str) else None
    if feature:
        parts.append(f"+ maps {feature['teacher_layer']}->{feature['student_layer']} x{feature['weight']:g}")
    return ", ".join(parts)


def _cost_cells(g: dict) -> list[str]:
    cost = g.get("cost")
    if not cost:
        return ["-", "-"]
    return [f"{cost['params'] / 1e6:.3g} M", f"{cost['macs_per_cycle'] / 1e9:.3g}"]


def cost_text(g: dict) -> str:
    """'0.0842 M parameters, 0.0756 GMAC per 8-s cycle', or '' where the group's cost is not known."""
    params, macs = _cost_cells(g)
    return "" if params == "-" else f"{params} parameters, {macs} GMAC per 8-s cycle"


TWO_CLASS_HEAD = ["2-class Sp", "2-class Se", "2-class Score"]


def _two_class_cells(values: dict | None) -> list[str]:
    """Mean ± std cells of a group's two-class numbers, or plain cells of an ensemble's; '-' where absent."""
    values = values or {}
    return [_ms(values.get(key)) if isinstance(values.get(key), dict) else _num(values.get(key)) for key in METRICS]


def _group_table(report: dict) -> tuple[list[str], list[list[str]]]:
    head = ["group", "arch", "kind", "teachers", "params", "GMAC/cycle", "n", "Sp", "Se", "Score", *TWO_CLASS_HEAD,
            "selection", "runs"]
    body = []
    for g in report["groups"]:
        body.append([
            g["group"], str(g["arch"]), _kind_label(g), g["teacher_group"] or "-", *_cost_cells(g), str(g["n"]),
            _ms(g["sp"]), _ms(g["se"]), _ms(g["score"]), *_two_class_cells(g.get("two_class")),
            _selection(g["selection"], g["test_selection"]),
            " ".join(g["run_ids"]) + (f" (+{len(g['not_finished'])} not finished)" if g["not_finished"] else ""),
        ])
    return head, body


def _ensemble_table(report: dict) -> tuple[list[str], list[list[str]]]:
    head = ["ensemble", "arch", "k", "Sp", "Se", "Score", *TWO_CLASS_HEAD, "cycles", "runs"]
    body = []
    for e in report["ensembles"]:
        if "error" in e:
            body.append([e["group"], *["-"] * (len(head) - 2), e["error"]])
            continue
        name = e["group"] + ("++" if e["generation"] == 1 else "++ (2nd gen)") + (" *" if e["test_selection"] else "")
        body.append([name, str(e["arch"]), f"{e['k']}{' (all)' if e['all'] else ''}", _num(e["sp"]), _num(e["se"]),
                     _num(e["score"]), *_two_class_cells(e.get("two_class")), str(e["n_cycles"]),
                     " ".join(e["run_ids"])])
    return head, body


def _hvs_table(report: dict, latex: bool = False) -> tuple[list[str], list[list[str]]]:
    head = ["arch", "source", "hard Sp", "hard Se", "hard Score", "soft Sp", "soft Se", "soft Score", "gain", "groups"]
    body = []
    for r in report["hard_vs_soft"]:
        hard = r["hard"] or {}
        body.append([
            r["arch"], f"ours ({r['mode']} k={r['k']})" + (" *" if r["test_selection"] else ""),
            _ms(hard.get("sp"), latex), _ms(hard.get("se"), latex), _ms(hard.get("score"), latex),
            _ms(r["soft"]["sp"], latex), _ms(r["soft"]["se"], latex), _ms(r["soft"]["score"], latex),
            _num(r["gain"]), f"{r['hard_group'] or '(no hard group)'} vs {r['soft_group']}"
            + ("" if r["same_settings"] or not r["hard_group"] else " (training settings differ)"),
        ])
        name = published_name(r["arch"])
        if name:
            hard_p, soft_p = PUBLISHED[name]["hard"], PUBLISHED[name]["soft"]
            p_h, p_s = published_triplet(hard_p), published_triplet(soft_p)
            body.append([
                name, "published (mean k=5, BTS++ teachers)",
                _ms(p_h["sp"], latex), _ms(p_h["se"], latex), _ms(p_h["score"], latex),
                _ms(p_s["sp"], latex), _ms(p_s["se"], latex), _ms(p_s["score"], latex),
                _num(soft_p[2][0] - hard_p[2][0]), "paper 001 Table 2",
            ])
    return head, body


def _published_table(report: dict, latex: bool = False) -> tuple[list[str], list[list[str]]]:
    head = ["model", "setting", "Sp", "Se", "Score"]
    body = [[p["model"], p["what"], _ms(p["sp"], latex), _ms(p["se"], latex), _ms(p["score"], latex)]
            for p in report["published"]]
    return head, body


def _calibration_table(report: dict, latex: bool = False) -> tuple[list[str], list[list[str]]]:
    head = ["group", "arch", "kind", "k", "ensemble ECE", "runs ECE", "cycles"]
    body = []
    for c in report["calibration"]:
        if "error" in c:
            body.append([c["group"], "-", "-", "-", "-", "-", c["error"]])
            continue
        body.append([c["group"], str(c["arch"]), str(c["kind"]), str(c["k"]), _num(c["ensemble_ece"], 4),
                     _ms(c["runs_ece"], latex, digits=4), str(c["n_cycles"])])
    return head, body


def _md_table(head: list[str], body: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---" for _ in head) + " |"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    parts = [f"# Results: {report['project']}", "", f"Scores in percent on the {report['split']} split."]
    parts += ["", "## Runs by group (mean ± std over seeds)", "", _md_table(*_group_table(report))]
    if report["ensembles"]:
        parts += ["", "## Ensembles (argmax of the mean stored logits, first k runs by seed)", "",
                  _md_table(*_ensemble_table(report))]
    if report["hard_vs_soft"]:
        parts += ["", "## Hard against soft labels", "", _md_table(*_hvs_table(report))]
    if report["published"]:
        parts += ["", "## Published (paper 001, official split)", "", _md_table(*_published_table(report))]
    if report.get("calibration"):
        parts += ["", "## Calibration (ECE of each group's ensemble, and of its runs one by one)", "",
                  _md_table(*_calibration_table(report))]
    parts += ["", *(f"- {note}" for note in report["notes"]), ""]
    return "\n".join(parts)


def _latex_escape(text: str) -> str:
    out = str(text)
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("±", r"$\pm$")):
        out = out.replace(a, b)
    return out


def _latex_table(head: list[str], body: list[list[str]], caption: str, raw_columns: Sequence[int] = ()) -> str:
    lines = [r"\begin{table}[t]", r"\centering", r"\caption{" + _latex_escape(caption) + "}",
             r"\begin{tabular}{" + "l" * len(head) + "}", r"\hline",
             " & ".join(_latex_escape(h) for h in head) + r" \\", r"\hline"]
    for row in body:
        cells = [c if i in raw_columns else _latex_escape(c) for i, c in enumerate(row)]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def render_latex(report: dict) -> str:
    head, body = _group_table(report)
    # Run ids are long; LaTeX tables keep them out (they are in the JSON and CSV).
    groups = _latex_table(head[:-1], [row[:-1] for row in body], "Runs by group (mean and std over seeds)")
    parts = [groups]
    if report["ensembles"]:
        head, body = _ensemble_table(report)
        parts.append(_latex_table(head[:-1], [row[:-1] for row in body], "Ensembles (argmax of mean logits)"))
    if report["hard_vs_soft"]:
        head, body = _hvs_table(report, latex=True)
        parts.append(_latex_table(head, body, "Hard against soft labels", raw_columns=range(2, 8)))
    if report["published"]:
        head, body = _published_table(report, latex=True)
        parts.append(_latex_table(head, body, "Published (paper 001)", raw_columns=(2, 3, 4)))
    if report.get("calibration"):
        head, body = _calibration_table(report, latex=True)
        parts.append(_latex_table(head, body, "Calibration (expected calibration error)", raw_columns=(5,)))
    parts.append("% " + " / ".join(report["notes"]))
    return "\n\n".join(parts) + "\n"


CSV_FIELDS = ["table", "source", "group", "arch", "kind", "mode", "k", "n", "sp_mean", "sp_std", "se_mean", "se_std",
              "score_mean", "score_std", "two_class_sp_mean", "two_class_sp_std", "two_class_se_mean",
              "two_class_se_std", "two_class_score_mean", "two_class_score_std", "gain", "selection",
              "compared_with", "run_ids"]
# Added only to a report made with calibration, so that the CSV of a plain report keeps its columns.
CALIBRATION_FIELDS = ["ensemble_ece", "runs_ece_mean", "runs_ece_std"]


def render_csv(report: dict) -> str:
    """One rectangular table: the ``table`` column says which of the paper's tables a row belongs to."""
    buf = io.StringIO()
    calibration = report.get("calibration")
    fields = CSV_FIELDS + CALIBRATION_FIELDS if calibration is not None else CSV_FIELDS
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()

    def stats(row: dict, values: dict, prefix: str = "") -> None:
        for key in METRICS:
            stat = values.get(key)
            if isinstance(stat, dict):
                row[f"{prefix}{key}_mean"], row[f"{prefix}{key}_std"] = stat.get("mean"), stat.get("std")
            else:
                row[f"{prefix}{key}_mean"] = stat
        if not prefix and isinstance(values.get("two_class"), dict):
            stats(row, values["two_class"], "two_class_")

    for g in report["groups"]:
        row = {"table": "groups", "source": "ours", "group": g["group"], "arch": g["arch"], "kind": g["kind"],
               "mode": g["mode"], "k": g["k"], "n": g["n"], "selection": g["selection"],
               "run_ids": " ".join(g["run_ids"])}
        stats(row, g)
        writer.writerow(row)
    for e in report["ensembles"]:
        if "error" in e:
            continue
        row = {"table": "ensembles", "source": "ours", "group": e["group"], "arch": e["arch"], "kind": e["kind"],
               "mode": "ensemble" if e["generation"] == 1 else "ensemble-2nd-gen", "k": e["k"], "n": e["k"],
               "selection": "test" if e["test_selection"] else "", "run_ids": " ".join(e["run_ids"])}
        stats(row, e)
        writer.writerow(row)
    for r in report["hard_vs_soft"]:
        for side in ("hard", "soft"):
            values = r[side] or {}
            row = {"table": "hard_vs_soft", "source": "ours", "group": r[f"{side}_group"], "arch": r["arch"],
                   "kind": side, "mode": r["mode"] if side == "soft" else "hard", "k": r["k"] if side == "soft" else 0,
                   "gain": r["gain"] if side == "soft" else None,
                   "compared_with": r["hard_group"] if side == "soft" else r["soft_group"],
                   "run_ids": " ".join(r[f"{side}_run_ids"])}
            stats(row, values)
            writer.writerow(row)
    for p in report["published"]:
        row = {"table": "published", "source": "published", "group": p["model"], "mode": p["what"]}
        stats(row, p)
        writer.writerow(row)
    for c in calibration or ():
        if "error" in c:
            continue
        writer.writerow({"table": "calibration", "source": "ours", "group": c["group"], "arch": c["arch"],
                         "kind": c["kind"], "k": c["k"], "n": c["n_cycles"], "ensemble_ece": c["ensemble_ece"],
                         "runs_ece_mean": c["runs_ece"]["mean"], "runs_ece_std": c["runs_ece"]["std"],
                         "run_ids": " ".join(c["run_ids"])})
    return buf.getvalue()


def jsonable(value):
    """Strict JSON: an undefined Sp or Se (NaN) becomes null."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if is_nan(value):
        return None
    return value


def render(report: dict, fmt: str) -> str:
    if fmt == "md":
        return render_markdown(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "latex":
        return render_latex(report)
    if fmt == "json":
        return json.dumps(jsonable(report), indent=2) + "\n"
    raise ReportError(f"unknown report format {fmt!r} (expected one of {', '.join(FORMATS)})")
