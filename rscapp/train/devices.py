"""The devices a job can train on, named as a user knows them: the GPU's name and memory where there is one."""

from __future__ import annotations


def _gpus() -> list[tuple[str, float]]:
    """(name, memory in GiB) of each CUDA device; none where torch has no CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        found.append((props.name, props.total_memory / 2**30))
    return found


def device_options() -> list[tuple[str, str]]:
    """(value for TrainSpec.device, label) pairs, ``auto`` first."""
    gpus = _gpus()
    labels = [f"GPU {i}: {name}, {memory:.0f} GiB" for i, (name, memory) in enumerate(gpus)]
    auto = f"auto: {labels[0]}" if gpus else "auto: CPU (no CUDA GPU found)"
    options = [("auto", auto), ("cpu", "CPU")]
    if len(gpus) == 1:
        options.append(("cuda", labels[0]))
    else:
        options += [(f"cuda:{i}", label) for i, label in enumerate(labels)]
    return options
