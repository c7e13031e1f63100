"""Training progress on the terminal: one line per epoch on stdout, bars on stderr (terminals only)."""

from __future__ import annotations

import math
import sys


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def format_epoch_line(m: dict) -> str:
    """The terminal line of one epoch: loss (and its terms, for feature KD), Sp, Se, Score (and validation
    Score), time and ETA."""
    width = len(str(m["epochs"]))
    parts = m.get("loss_parts") or {}
    terms = f"({', '.join(f'{name} {value:.4f}' for name, value in parts.items())})  " if parts else ""
    line = (
        f"epoch {m['epoch']:>{width}}/{m['epochs']}  loss {m['loss']:.4f}  {terms}"
        f"Sp {m['sp']:6.2f}  Se {m['se']:6.2f}  Score {m['score']:6.2f}"
    )
    if m.get("val_score") is not None:
        line += f"  val Score {m['val_score']:6.2f}"
    if m.get("best"):
        line += " *"
    return line + f"  {m['seconds']:.1f}s  ETA {format_duration(m.get('eta_s'))}"


def format_metrics(metrics: dict) -> str:
    """A finished run's final metrics in one line."""
    text = f"Sp {metrics['sp']:.2f}  Se {metrics['se']:.2f}  Score {metrics['score']:.2f}"
    text += f"  (epoch {metrics.get('epoch')}, selection {metrics.get('selection')})"
    if metrics.get("selection") == "test":
        text += " [reference protocol: epoch picked on test]"
    return text


class TerminalProgress:
    """Receives the training events (``progress`` of ``trainer.train.run_training`` and the worker) and
    prints them: epoch lines on stdout; bars for features, batches and logits on stderr."""

    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        self.bar = None
        self.bar_phase = None

    def _bar(self, phase: str, total: int, desc: str, unit: str):
        if self.quiet:
            return None
        if self.bar_phase != phase or self.bar is None or self.bar.total != total:
            self.close()
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, leave=False,
                            disable=None)
            self.bar_phase = phase
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar, self.bar_phase = None, None

    def __call__(self, event: dict) -> None:
        phase = event.get("phase")
        if phase in ("features", "logits", "views"):
            bar = self._bar(phase, event["total"], "teacher views" if phase == "views" else phase,
                            "view" if phase == "views" else "cycle")
            if bar is not None:
                bar.update(event["done"] - bar.n)
        elif phase == "batch":
            bar = self._bar(f"batch{event['epoch']}", event["batches"], f"epoch {event['epoch']}", "batch")
            if bar is not None:
                bar.update(event["batch"] - bar.n)
        elif phase == "epoch":
            self.close()
            print(format_epoch_line(event), flush=True)
        elif phase == "warning":  # e.g. a damaged checkpoint passed over for the one before it
            self.close()
            print(f"warning: {event['message']}", file=sys.stderr, flush=True)
        elif phase == "resumed":
            self.close()
            print(f"resuming {event['run_id']} after epoch {event['epoch']}/{event['epochs']}", flush=True)
        elif phase == "start":
            print(f"worker: starting {event['run_id']}", flush=True)
        elif phase == "failed":
            self.close()
            print(f"worker: {event['run_id']} failed: {event['error']}", file=sys.stderr, flush=True)
        elif phase == "done":
            self.close()
