"""A classified recording's report: a CSV of its cycles, and one self-contained HTML page.

The page needs nothing beside it and no script: the spectrogram is an inline PNG (numpy STFT, encoded
by :mod:`.png`) with a strip under it where each cycle is a band in its class's colour (uncertain grey,
a red top edge where a confident prediction differs from the annotation), the class names laid over
the strip in CSS; then the cycle table, the notes and the model card. Every string from a file, a
card or a label is escaped. Neither needs torch.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

import numpy as np

from .. import __version__
from ..audio import read_audio
from ..files import write_text_atomic
from .classify import UNCERTAIN, RecordingResult, result_rows
from .png import colormap, encode_png

CLASS_COLOURS = {
    "normal": (46, 139, 87), "crackle": (230, 126, 34), "wheeze": (52, 120, 219), "both": (155, 89, 182),
    UNCERTAIN: (150, 150, 150),
}
OTHER_COLOUR = (90, 90, 90)  # a class of a model whose classes are not the usual four
DISAGREE_COLOUR = (220, 20, 60)
SPECTROGRAM_HEIGHT, GAP, STRIP = 200, 2, 18
MAX_FREQUENCY = 2000.0  # breath sounds, wheezes and most crackles lie below it; ICBHI's 4 kHz files reach it
# The colours span these percentiles of the recording's levels, not its extremes: the heartbeat and
# the rumble under 100 Hz, or one stethoscope knock, would otherwise leave the breath sounds in the dark.
DARK_PERCENTILE, BRIGHT_PERCENTILE = 20.0, 99.7


def _colour(label: str) -> tuple[int, int, int]:
    return CLASS_COLOURS.get(label, OTHER_COLOUR)


def report_rows(result: RecordingResult) -> list[dict]:
    """The CSV's rows: the cycle rows of ``rsc classify --csv``, then the model, its version and the threshold."""
    provenance = {"model": result.model, "model_version": result.version or "", "threshold": result.threshold}
    return [row | provenance for row in result_rows(result)]


def write_csv_report(result: RecordingResult, path: str | Path) -> Path:
    """One row per cycle (see :func:`report_rows`), written atomically; returns the path."""
    rows = report_rows(result)
    columns = list(rows[0]) if rows else ["file", "cycle", "start", "end", "model", "model_version", "threshold"]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, text.getvalue())


# --------------------------------------------------------------------------------------------------------
# The spectrogram
# --------------------------------------------------------------------------------------------------------
def spectrogram_image(wave: np.ndarray, rate: int, width: int, height: int = SPECTROGRAM_HEIGHT) -> tuple[np.ndarray, float]:
    """A log-magnitude STFT as RGB (height, width, 3), low frequencies at the bottom; and its top frequency."""
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    n_fft = 1 << max(6, int(np.ceil(np.log2(0.032 * rate))))  # about 32 ms: breath sounds' fine time scale
    if wave.size < n_fft:
        wave = np.pad(wave, (0, n_fft - wave.size))
    starts = np.linspace(0, wave.size - n_fft, width).astype(np.int64)
    frames = wave[starts[:, None] + np.arange(n_fft)] * np.hanning(n_fft)
    top = min(MAX_FREQUENCY, rate / 2.0)
    bins = int(np.floor(top / rate * n_fft)) + 1
    magnitude = np.abs(np.fft.rfft(frames, axis=1))[:, :bins]
    db = 20.0 * np.log10(magnitude + 1e-10)
    dark, bright = np.percentile(db, [DARK_PERCENTILE, BRIGHT_PERCENTILE])
    level = (db - dark) / max(bright - dark, 1e-6)
    rows = np.round(np.linspace(bins - 1, 0, height)).astype(np.int64)  # top row: the highest frequency
    return colormap(level.T[rows]), top


def _span_pixels(start: float, end: float, duration: float, width: int) -> tuple[int, int]:
    x0 = int(np.clip(round(start / duration * width), 0, width - 1))
    return x0, int(np.clip(round(end / duration * width), x0 + 1, width))


def report_image(result: RecordingResult, wave: np.ndarray, rate: int) -> tuple[np.ndarray, float]:
    """The spectrogram with cycle boundaries, and the strip of class bands under it."""
    duration = result.duration or wave.size / float(rate)
    width = int(np.clip(round(duration * 60), 300, 1600))
    spec, top = spectrogram_image(wave, rate, width)
    image = np.full((SPECTROGRAM_HEIGHT + GAP + STRIP, width, 3), 255, dtype=np.uint8)
    image[:SPECTROGRAM_HEIGHT] = spec
    strip = image[SPECTROGRAM_HEIGHT + GAP :]
    for cycle in result.cycles:
        x0, x1 = _span_pixels(cycle.start, cycle.end, duration, width)
        strip[:, x0:x1] = _colour(cycle.label)
        if cycle.disagrees:
            strip[:4, x0:x1] = DISAGREE_COLOUR
        image[:SPECTROGRAM_HEIGHT, x0] = 255  # where a cycle starts
    return image, top


# --------------------------------------------------------------------------------------------------------
# The page
# --------------------------------------------------------------------------------------------------------
def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float) else _e(value)


def _flat(value, nested: bool = False) -> str:
    """A card value in one line: dicts as key=value (a nested one in brackets), lists joined."""
    if isinstance(value, dict):
        text = "; ".join(f"{k}={_flat(v, True)}" for k, v in value.items() if v not in (None, {}, [], ""))
        return f"({text})" if nested else text
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v, True) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def card_rows(card: dict | None, result: RecordingResult) -> list[tuple[str, str]]:
    """The model card as (name, text) rows, unescaped."""
    rows = [("Model", result.model), ("Version (sha256 of the model file; a group's: of its runs' files)", result.version or "not recorded")]
    if card is None:
        return rows + [("Card", "none: a project run or group (its spec and scores are in the project)")]
    model, run = card.get("model") or {}, card.get("run") or {}
    prep = card.get("prep") or {}
    rows += [
        ("Classes", ", ".join(map(str, card.get("classes") or []))),
        ("Sample rate", f"{prep.get('sample_rate', '?')} Hz"),
        ("Cycle preparation", _flat({k: v for k, v in prep.items() if k != "sample_rate"})),
        ("Features", _flat(card.get("features") or {})),
        ("Normalisation", _flat(card.get("normalization") or {})),
        ("File", _flat({k: model.get(k) for k in ("file", "arch", "opset", "int8")})),
    ]
    if run:
        rows += [
            ("Run", _flat({k: run.get(k) for k in ("id", "group", "kind", "arch", "seed", "epoch", "project")})),
            ("Training protocol", _flat(run.get("spec") or {})),
            ("Scores", _flat(run.get("metrics") or {}) or "none recorded"),
            ("Teacher group", _flat(run["teachers"]) if run.get("teachers") else "none (trained on the labels)"),
            ("Trained with", _flat({k: run.get(k) for k in ("code_version", "data_fingerprint", "finished_at")})),
        ]
    else:
        rows.append(("Run", "none: exported from an untrained or outside model"))
    rows.append(("Exported", _flat(card.get("exported") or {})))
    return rows


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.disagrees td { background: #fde8ec; }
.figure { position: relative; display: inline-block; }
.band { position: absolute; height: 18px; font-size: 10px; line-height: 18px; overflow: hidden;
        white-space: nowrap; color: #fff; text-align: center; }
.swatch { display: inline-block; width: 0.9em; height: 0.9em; margin-right: 0.3em; vertical-align: middle; }
.scroll { overflow-x: auto; }
"""


def _swatch(label: str) -> str:
    return f'<span class="swatch" style="background: rgb{_colour(label)}"></span>'


def _figure(result: RecordingResult, wave: np.ndarray, rate: int) -> str:
    image, top = report_image(result, wave, rate)
    height, width = image.shape[:2]
    data = base64.b64encode(encode_png(image)).decode("ascii")
    duration = result.duration or wave.size / float(rate)
    bands = []
    for index, c in enumerate(result.cycles, 1):
        x0, x1 = _span_pixels(c.start, c.end, duration, width)
        tip = f"cycle {index}: {c.start:.3f}-{c.end:.3f} s, {c.label} ({c.confidence:.2f})"
        tip += f"; annotated {c.annotated}" if c.annotated else ""
        bands.append(f'<div class="band" style="left: {x0}px; width: {x1 - x0}px; top: {SPECTROGRAM_HEIGHT + GAP}px"'
                     f' title="{_e(tip)}">{"&#8800; " if c.disagrees else ""}{_e(c.label)}</div>')
    return (f'<div class="scroll"><div class="figure" style="width: {width}px; height: {height}px">'
            f'<img alt="spectrogram of {_e(Path(result.path).name)}, 0-{top:.0f} Hz, {duration:.2f} s, with its cycles"'
            f' width="{width}" height="{height}" src="data:image/png;base64,{data}">'
            f'{"".join(bands)}</div></div>'
            f'<p>0-{duration:.2f} s across, 0-{top:.0f} Hz up (log magnitude). '
            + " ".join(f"{_swatch(name)}{_e(name)}" for name in (*_classes(result), UNCERTAIN))
            + f' <span class="swatch" style="background: rgb{DISAGREE_COLOUR}"></span>differs from the annotation</p>')


def _classes(result: RecordingResult) -> list[str]:
    return list(result.cycles[0].probabilities) if result.cycles else []


def _cycle_table(result: RecordingResult) -> str:
    classes = _classes(result)
    head = ["#", "start (s)", "end (s)", "source", "label", "confidence", *(f"p({c})" for c in classes),
            "annotated", "disagrees"]
    lines = ["<table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for index, c in enumerate(result.cycles, 1):
        cells = [f'<td class="n">{index}</td>', f'<td class="n">{c.start:.3f}</td>', f'<td class="n">{c.end:.3f}</td>',
                 f"<td>{_e(c.source)}</td>", f"<td>{_swatch(c.label)}{_e(c.label)}</td>", f'<td class="n">{c.confidence:.3f}</td>',
                 *(f'<td class="n">{_number(c.probabilities[k])}</td>' for k in classes),
                 f"<td>{_e(c.annotated or '')}</td>", f"<td>{'yes' if c.disagrees else ''}</td>"]
        mark = ' class="disagrees"' if c.disagrees else ""
        lines.append(f"<tr{mark}>{''.join(cells)}</tr>")
    return "\n".join(lines) + "</tbody></table>"


def html_report(result: RecordingResult, card: dict | None = None, wave: np.ndarray | None = None,
                rate: int | None = None) -> str:
    """The page's text; the audio is read from ``result.path`` unless ``wave`` and ``rate`` are given."""
    notes = [f"Cycles from {result.cycles_from}.", f"Threshold {result.threshold:g}: a cycle whose top probability "
             f"is below it is {UNCERTAIN}.", *result.notes]
    if wave is None or rate is None:
        try:
            wave, rate = read_audio(result.path)
        except (OSError, ValueError) as exc:  # AudioError is a ValueError
            wave = None
            notes.append(f"No spectrogram: {exc}")
    name = Path(result.path).name
    counts = ", ".join(f"{label} {sum(c.label == label for c in result.cycles)}" for label in sorted({c.label for c in result.cycles}))
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta name="generator" content="RSC Studio {_e(__version__)}">',
        f"<title>{_e(name)}: classified by {_e(result.model)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(name)}</h1>",
        f"<p>{_e(result.path)}, {result.duration:.2f} s, {len(result.cycles)} cycle(s): {_e(counts or 'none')}. "
        f"Classified by <b>{_e(result.model)}</b>{' (version ' + _e(result.version[:12]) + ')' if result.version else ''}.</p>",
        _figure(result, wave, rate) if wave is not None else "",
        "<h2>Cycles</h2>", _cycle_table(result),
        "<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>",
        "<h2>Model</h2><table>" + "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in card_rows(card, result)) + "</table>",
        f"<p><small>Written by RSC Studio {_e(__version__)}.</small></p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def write_html_report(result: RecordingResult, path: str | Path, card: dict | None = None,
                      wave: np.ndarray | None = None, rate: int | None = None) -> Path:
    """Write :func:`html_report` atomically; returns the path."""
    return write_text_atomic(path, html_report(result, card, wave, rate))
