"""A candidate's checkpoint on disk: ``RUN_DIR/candidates/ID/``.

A checkpoint directory holds ``weights.npz`` (every layer's weights, keyed
``layer_name/index``; with ``training.g_ema``, the generator's moving average
too, keyed ``ema/layer_name/index``, the steps it averaged in meta.json's
``ema_steps``), ``optimizers.npz`` (each optimizer's variables, keyed
``name/index``), ``meta.json`` (genome and steps trained along the lineage)
and ``genome.json`` (the genome alone, for a reader), so a candidate can be a
parent, or continue training itself. Every file is replaced atomically
(:func:`gan_nas.safe_io.write_atomic`). A retired candidate's weights and
optimizer state are pruned (:data:`PRUNED_FILES`); its meta and genome stay.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from gan_nas import safe_io
from gan_nas.errors import CheckpointError, GanNasError
from gan_nas.genome import GanGenome

WEIGHTS_FILE = "weights.npz"
OPTIMIZERS_FILE = "optimizers.npz"
META_FILE = "meta.json"
GENOME_FILE = "genome.json"
PRUNED_FILES = (WEIGHTS_FILE, OPTIMIZERS_FILE)  # what pruning a retired checkpoint deletes
CHECKPOINT_FILES = (META_FILE, WEIGHTS_FILE)  # what a trial that starts from a checkpoint reads
EMA_PREFIX = "ema/"  # weights.npz keys of the generator's moving average


def _layer_weights(model) -> dict[str, np.ndarray]:
    out = {}
    for layer in model.layers:
        for i, w in enumerate(layer.get_weights()):
            out[f"{layer.name}/{i}"] = w
    return out


def save_checkpoint(path: Path, genome: GanGenome, generator, discriminator, optimizers, total_steps: int,
                    ema: tuple[Any, int] | None = None) -> None:
    """Write weights, optimizer state and meta to ``path`` (files replaced atomically); ``ema``: the
    generator's moving average (a model of the same genome) and the steps it averaged."""
    path.mkdir(parents=True, exist_ok=True)
    weights = {**_layer_weights(generator), **_layer_weights(discriminator)}
    if ema is not None:
        weights.update({EMA_PREFIX + k: v for k, v in _layer_weights(ema[0]).items()})
    _save_npz(path / WEIGHTS_FILE, weights)
    opt = {}
    for name, o in optimizers.items():
        for i, v in enumerate(o.variables):
            opt[f"{name}/{i}"] = np.asarray(v)
    _save_npz(path / OPTIMIZERS_FILE, opt)
    meta = {"genome": genome.to_dict(), "total_steps": int(total_steps)}
    if ema is not None:
        meta["ema_steps"] = int(ema[1])
    for name, text in ((META_FILE, json.dumps(meta)), (GENOME_FILE, genome.to_json())):
        safe_io.write_bytes_atomic(path / name, text.encode())


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    safe_io.write_atomic(path, write)


def load_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read ``meta``, layer weights and optimizer state from a checkpoint directory."""
    from gan_nas import data

    try:
        meta = safe_io.read_json(path / META_FILE)
        # Each array's header is checked before its data is read (a header promising 364 TiB was a
        # MemoryError), and arrays of Python objects are refused, as for any file a user controls.
        weights = data.read_npz(path / WEIGHTS_FILE, (), None, error=CheckpointError)
        opt: dict[str, np.ndarray] = {}
        if os.path.lexists(path / OPTIMIZERS_FILE):
            opt = data.read_npz(path / OPTIMIZERS_FILE, (), None, error=CheckpointError)
        if not isinstance(meta, dict):
            raise ValueError(f"{META_FILE} holds a JSON {type(meta).__name__}, not an object")
        check_meta(meta)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, AttributeError, CheckpointError) as e:
        # The run directory's fault, not the genome's: the search stops (exit 2) rather than
        # journal a candidate as failed for good; restored, the run resumes.
        why = str(e) if isinstance(e, CheckpointError) else f"{type(e).__name__}: {e}"
        raise CheckpointError(f"checkpoint {path} is missing or damaged ({why}); restore it "
                              f"from a copy of the run and resume") from None
    return meta, weights, opt


def load_ema(path: Path, meta: dict[str, Any], weights: dict[str, np.ndarray], model) -> int | None:
    """Set ``model`` (a generator) to the moving average that the checkpoint at ``path`` holds (its
    ``meta`` and ``weights`` as :func:`load_checkpoint` read them) and return the steps it averaged;
    None (nothing assigned) where the checkpoint holds no average (trained without ``training.g_ema``).
    CheckpointError where it holds one that does not fit ``model``."""
    if not any(k.startswith(EMA_PREFIX) for k in weights):
        return None
    values = {}
    for layer in model.layers:
        current = layer.get_weights()
        saved = [weights.get(f"{EMA_PREFIX}{layer.name}/{i}") for i in range(len(current))]
        if any(v is None or v.shape != c.shape for v, c in zip(saved, current)):
            raise CheckpointError(f"checkpoint {path} is damaged: its generator average has no weights of the "
                                  f"shape layer {layer.name} needs; restore it from a copy of the run and resume")
        values[layer.name] = saved
    for layer in model.layers:
        if values[layer.name]:
            layer.set_weights(values[layer.name])
    return meta.get("ema_steps", 0)  # checked by check_meta


def check_meta(meta: dict[str, Any]) -> None:
    """Refuse a checkpoint's meta without a parseable genome or a step count.

    A child trained from a survivor whose meta.json had lost them was journaled as failed
    (``KeyError: 'genome'``) and the search went on: the run lost that lineage for good.
    Raising here makes it the run directory's fault instead (exit 2, resumable once restored).
    """
    if "genome" not in meta:
        raise ValueError(f"{META_FILE} has no genome")
    try:
        GanGenome.from_dict(meta["genome"])
    except GanNasError as e:
        raise ValueError(f"{META_FILE}'s genome: {e}") from None
    for key in ("total_steps", "ema_steps") if "ema_steps" in meta else ("total_steps",):
        steps = meta.get(key)
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"{META_FILE}'s {key} is {repr(steps)[:20]}, not a count of steps")


def restore_optimizers(optimizers, state: dict[str, np.ndarray]) -> bool:
    """Assign the optimizer state :func:`load_checkpoint` read to built ``optimizers``, if every shape matches.

    Returns:
        False (nothing assigned) when a variable is missing or of another shape.
    """
    for name, o in optimizers.items():
        values = [state.get(f"{name}/{i}") for i in range(len(o.variables))]
        if any(v is None or tuple(v.shape) != tuple(var.shape) for v, var in zip(values, o.variables)):
            return False
    for name, o in optimizers.items():
        for i, var in enumerate(o.variables):
            var.assign(state[f"{name}/{i}"])
    return True
