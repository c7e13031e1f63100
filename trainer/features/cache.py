"""The feature cache: features of exact cycle sets, computed once and memory-mapped on every later load.

It lives in ``project.artifacts / "features"``: one ``.npy`` and a JSON sidecar per (feature set, exact
cycle set). Its key hashes every setting of the set and ``project.cycle_set_fingerprint`` of the
cycles (ids in order, boundaries, audio sha256), so an edit to a boundary or a changed audio file gives
a new key; a relabel does not, as labels are no input.

The key holds the sha256 the project recorded, so before any cache is used every recording's file is
checked against it (:meth:`Project.examine_audio`: size, modification time and a sampled hash, the
whole file when its time moved). A file edited in place is marked ``changed`` and refused by name:
features are never served from, or computed on, audio other than the audio the labels were made on.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch

from ..audio import prepare_recording_cycles, read_audio
from ..files import TMP_MARK, atomic_path, remove_stale_temps, write_json_atomic
from ..project import file_sha256, now
from .sets import FeatureError, FeatureSet, feature_set

ProgressFn = Callable[[int, int], None]

CACHE_FORMAT = 1


@dataclass
class CachedFeatures:
    """Features of a cycle set, read from (or just written to) the project's cache."""

    features: torch.Tensor  # (N, T, F) float32, sharing memory with `array`
    array: np.ndarray  # the memory map of `path`
    path: Path
    hit: bool
    cycle_ids: list[int]
    feature_set: FeatureSet
    seconds: float = 0.0
    meta: dict = field(default_factory=dict)


def cache_dir(project) -> Path:
    return Path(project.artifacts) / "features"


def _cycle_ids(cycles) -> list[int]:
    ids = []
    for item in cycles:
        if isinstance(item, dict):
            ids.append(int(item["id"]))
        else:
            ids.append(int(item))
    return ids


def _fetch_rows(project, ids: Sequence[int]) -> dict[int, dict]:
    rows: dict[int, dict] = {}
    unique = sorted(set(ids))
    for i in range(0, len(unique), 900):  # SQLite's parameter limit
        part = unique[i : i + 900]
        marks = ",".join("?" * len(part))
        for row in project.query(
            f'SELECT c.id, c.recording_id, c.start, c."end" FROM cycles c WHERE c.id IN ({marks})', part
        ):
            rows[row["id"]] = row
    missing = [cid for cid in unique if cid not in rows]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise FeatureError(f"no cycles with id {shown} in {project.path}")
    return rows


class _NpyRowWriter:
    """A float32 .npy file filled row by row with ordinary writes.

    Writing through a fresh memory map page-faults once per 4 KiB page, which measured 3 ms per cycle
    (as much as the filterbank) on a virtual machine; seek + write of whole rows costs a fraction.
    """

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.shape = shape
        self.row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * 4
        self.handle = open(path, "wb")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(self.handle, header)
        self.offset = self.handle.tell()
        self.handle.truncate(self.offset + self.row_bytes * shape[0])

    def write_rows(self, index: np.ndarray, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype="<f4")
        index = np.asarray(index, dtype=np.int64)
        if rows.shape != (len(index), *self.shape[1:]):
            raise ValueError(f"rows of shape {rows.shape} for {len(index)} indices of {self.shape}")
        # Runs of consecutive indices (the usual case: cycles listed recording by recording) in one write.
        breaks = np.nonzero(np.diff(index) != 1)[0] + 1
        for run in np.split(np.arange(len(index)), breaks):
            if run.size:
                self.handle.seek(self.offset + int(index[run[0]]) * self.row_bytes)
                self.handle.write(memoryview(rows[run[0] : run[-1] + 1]).cast("B"))

    def __enter__(self) -> "_NpyRowWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.handle.close()  # atomic_path syncs it to disk before the rename


def _open_cache(npy: Path, sidecar: Path, key: str, ids: list[int], shape: tuple) -> tuple[np.ndarray, dict] | None:
    """The cached array if the pair is complete, consistent and for exactly this key; else None."""
    if not (npy.exists() and sidecar.exists()):
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        if meta.get("key") != key or meta.get("cycle_ids") != ids or tuple(meta.get("shape", ())) != shape:
            return None
        # Copy-on-write: the file is never written through this map, and a caller that changes a batch
        # in place gets private pages instead of a crash on a read-only mapping.
        array = np.load(npy, mmap_mode="c")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    if array.shape != shape or array.dtype != np.float32:
        return None
    return array, meta


def ensure_features(
    project,
    set_name: str | FeatureSet,
    cycles: Iterable[dict | int],
    progress: ProgressFn | None = None,
    device: str | torch.device | None = None,
    chunk: int | None = None,
) -> CachedFeatures:
    """Features of the given cycles (rows from ``project.cycles`` or ids), in their order, via the cache.

    A hit opens the stored ``.npy`` memory-mapped. A miss reads and prepares each recording once
    (``prepare_recording_cycles``), computes the features in batches of ``chunk`` cycles (32 on CPU,
    256 on a GPU) on ``device`` (CPU by default), writes them to a temp file and renames it
    into place, so a killed run leaves no cache that could be mistaken for a complete one.

    Boundaries come from the project at call time, not from the rows passed in. Recordings whose audio
    is not available (status other than ``ok``, or a file whose content no longer matches its stored
    sha256) raise :class:`FeatureError` naming them: callers that want to go on without them pass
    ``project.cycles(with_audio=True)``. ``progress(done, total)`` counts cycles.
    """
    fs = feature_set(set_name)
    ids = _cycle_ids(cycles)
    frames, bins = fs.shape
    shape = (len(ids), frames, bins)
    if not ids:
        empty = np.zeros(shape, dtype=np.float32)
        return CachedFeatures(torch.from_numpy(empty), empty, Path(), False, [], fs)

    rows = _fetch_rows(project, ids)
    _check_audio(project, dict.fromkeys(rows[cid]["recording_id"] for cid in ids))
    fingerprint = project.cycle_set_fingerprint(ids)
    key = hashlib.sha256(f"{fs.key()}\n{fingerprint}".encode()).hexdigest()
    folder = cache_dir(project)
    npy = folder / f"{fs.name}-{key[:24]}.npy"
    sidecar = npy.with_suffix(".json")
    opened = _open_cache(npy, sidecar, key, ids, shape)
    if opened is not None:
        array, meta = opened
        return CachedFeatures(torch.from_numpy(array), array, npy, True, ids, fs, meta=meta)

    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder)
    started = time.perf_counter()
    with atomic_path(npy) as tmp:
        with _NpyRowWriter(tmp, shape) as writer:
            _compute_into(project, fs, ids, rows, writer, progress, device, chunk)
        if project.cycle_set_fingerprint(ids) != fingerprint:
            raise FeatureError(
                "cycles or audio changed while their features were being computed; run it again"
            )
    seconds = time.perf_counter() - started
    meta = {
        "format": CACHE_FORMAT,
        "set": fs.name,
        "key": key,
        "settings": fs.settings(),
        "fingerprint": fingerprint,
        "shape": list(shape),
        "dtype": "float32",
        "created_at": now(),
        "seconds": round(seconds, 3),
        "cycle_ids": ids,
    }
    write_json_atomic(sidecar, meta)
    _remove_superseded(folder, fs.name, ids, keep=npy)
    opened = _open_cache(npy, sidecar, key, ids, shape)
    if opened is None:  # only a concurrent writer deleting it could get here
        raise FeatureError(f"{npy}: feature cache vanished right after it was written")
    array, meta = opened
    return CachedFeatures(torch.from_numpy(array), array, npy, False, ids, fs, seconds, meta)


def load_features(
    project,
    set_name: str | FeatureSet,
    cycles: Iterable[dict | int],
    progress: ProgressFn | None = None,
    device: str | torch.device | None = None,
) -> torch.Tensor:
    """(N, T, F) float32 features of the cycles, in their order; see :func:`ensure_features`."""
    return ensure_features(project, set_name, cycles, progress=progress, device=device).features


def _check_audio(project, recording_ids: Iterable[int]) -> None:
    """FeatureError naming every recording whose audio is not there with the content the project recorded.

    A recording marked ok is checked again first (cheaply, see the module's docstring); one marked
    otherwise stays as the project says until ``rsc check`` or a relocation changes it.
    """
    unavailable = []
    for recording_id in recording_ids:
        rec = project.recording(recording_id)
        status, reason = rec.get("audio_status") or "missing", None
        if status == "ok" and rec.get("path"):
            verdict = project.examine_audio(rec)
            status, reason = verdict.status, verdict.reason
        elif status == "ok":
            status = "missing"
        if status != "ok":
            unavailable.append(f"{rec['name']} ({status}: {reason})" if reason else f"{rec['name']} ({status})")
    if unavailable:
        more = f" and {len(unavailable) - 8} more" if len(unavailable) > 8 else ""
        shown = ", ".join(sorted(unavailable)[:8]) + more
        raise FeatureError(
            f"no usable audio for {len(unavailable)} recordings: {shown}. Relocate or restore the audio (see "
            "`rsc check`), or leave those cycles out with project.cycles(with_audio=True)."
        )


def _remove_superseded(folder: Path, set_name: str, ids: list[int], keep: Path) -> None:
    """Drop older caches of the same set for the same cycle ids: after an edit they can never hit again
    (unless the edit is undone), and each can be gigabytes."""
    for sidecar in folder.glob(f"{set_name}-*.json"):
        npy = sidecar.with_suffix(".npy")
        if npy == keep:
            continue
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if meta.get("set") == set_name and meta.get("cycle_ids") == ids:
            for path in (sidecar, npy):
                try:
                    path.unlink()
                except OSError:  # mapped by another process on Windows: left for later
                    pass


def clear_cache(project, set_name: str | None = None) -> int:
    """Delete cached features (of one set, or all); returns the number of files removed."""
    folder = cache_dir(project)
    removed = 0
    if not folder.exists():
        return 0
    pattern = f"{set_name}-*" if set_name else "*"
    for path in folder.glob(pattern):
        if path.suffix in (".npy", ".json") or TMP_MARK in path.name:
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _compute_into(
    project,
    fs: FeatureSet,
    ids: list[int],
    rows: dict[int, dict],
    out: "_NpyRowWriter",
    progress: ProgressFn | None,
    device,
    chunk: int | None,
) -> None:
    if not chunk:
        # On CPU, arrays above glibc's 32 MiB mmap threshold are fresh pages on every allocation, and
        # faulting them in cost as much as the filterbank; 32 cycles (16 MiB of 16 kHz audio) stay below.
        on_gpu = device is not None and torch.device(device).type != "cpu"
        chunk = 256 if on_gpu else 32
    by_recording: dict[int, list[int]] = {}
    for index, cid in enumerate(ids):
        by_recording.setdefault(rows[cid]["recording_id"], []).append(index)
    recordings = {rid: project.recording(rid) for rid in by_recording}

    total = len(ids)
    done = 0
    if progress is not None:
        progress(0, total)
    pending_waves: list[np.ndarray] = []
    pending_index: list[np.ndarray] = []
    pending = 0

    def flush() -> None:
        nonlocal pending, done
        if not pending:
            return
        waves = np.concatenate(pending_waves) if len(pending_waves) > 1 else pending_waves[0]
        index = np.concatenate(pending_index)
        for s in range(0, len(index), chunk):
            feats = fs.compute(torch.from_numpy(waves[s : s + chunk]), device=device)
            out.write_rows(index[s : s + chunk], feats.cpu().numpy())
            done += min(chunk, len(index) - s)
            if progress is not None:
                progress(done, total)
        pending_waves.clear()
        pending_index.clear()
        pending = 0

    for recording_id, indices in by_recording.items():
        rec = recordings[recording_id]
        path = project.audio_path(rec)
        if path is None or not path.exists():
            raise FeatureError(f"{rec['name']}: audio file not found at {path}")
        if rec.get("sha256") and file_sha256(path) != rec["sha256"]:  # changed since _check_audio
            project.update_recording(rec["id"], {"audio_status": "changed"})
            raise FeatureError(
                f"{rec['name']}: {path} no longer has the content the project recorded (sha256 differs); "
                "marked changed: restore or relocate the audio (see `rsc check`) before computing features"
            )
        wave, sr = read_audio(path)
        spans = [(rows[ids[i]]["start"], rows[ids[i]]["end"]) for i in indices]
        pending_waves.append(prepare_recording_cycles(wave, sr, spans, fs.prep))
        pending_index.append(np.asarray(indices, dtype=np.int64))
        pending += len(indices)
        if pending >= chunk:
            flush()
    flush()
