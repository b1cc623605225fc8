"""A factorised categorical policy over a genome's decisions, trained with REINFORCE.

The controllers of NAS (Zoph & Le 2017), ENAS and AutoGAN sample an
architecture decision by decision and raise the log-probability of the
decisions that earned more reward than a moving-average baseline. With the few
dozen trials a CPU budget allows, a recurrent controller has far more
parameters than rewards to fit them; one independent softmax per decision (the
policy of Pham et al.'s ENAS without its LSTM) learns from that few, and its
state is a handful of logits that resume exactly.

The decisions (:func:`decisions`) mirror :func:`gan_nas.space.sample`:
depth, and per block slot its kind, whether it changes the resolution,
filters, kernel, norm and activation; the generator's latent and stem; the
discriminator's head; the loss and Adam's settings. A sampled decision vector
is decoded into a genome and repaired into the space like any other
(:func:`gan_nas.space.repair`), so every sample is valid. Only the decisions a
genome used (not those of block slots beyond its depth) are credited.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from gan_nas import space as space_mod
from gan_nas.genome import GanGenome, LayerGene, NetworkGenome, TrainingGenes

Action = dict[str, int]  # decision name -> index of the chosen option


def decisions(space: space_mod.SearchSpace, shape: tuple[int, int, int]) -> dict[str, tuple[Any, ...]]:
    """Every decision of a genome of ``space`` for images of ``shape``, and its options, in order."""
    filters, kernels, acts = space.filter_choices, space.kernels, space.activations
    d: dict[str, tuple[Any, ...]] = {
        "g.blocks": tuple(range(space.min_g_blocks, space.max_g_blocks + 1)),
        "g.latent": tuple(space.latent_sizes),
        "g.stem.filters": filters, "g.stem.norm": space.g_norms, "g.stem.activation": acts,
    }
    for i in [*range(space.max_g_blocks), "out"]:
        d[f"g.{i}.kind"] = space.g_kinds
        d[f"g.{i}.up"] = (False, True)
        d[f"g.{i}.kernel"] = kernels
        d[f"g.{i}.interpolation"] = space.interpolations
        if i != "out":
            d.update({f"g.{i}.filters": filters, f"g.{i}.norm": space.g_norms, f"g.{i}.activation": acts})
    d["d.blocks"] = tuple(range(max(space.min_d_blocks, space.min_downsamples(shape)), space.max_d_blocks + 1))
    for i in range(space.max_d_blocks):
        d.update({f"d.{i}.down": (False, True), f"d.{i}.filters": filters, f"d.{i}.kernel": kernels,
                  f"d.{i}.norm": space.d_norms, f"d.{i}.activation": acts, f"d.{i}.dropout": space.dropouts})
    d.update({"d.head.norm": tuple(space_mod._head_norms(space)), "d.minibatch_std": (False, True),
              "d.pooling": space.poolings})
    d.update({"t.loss": space.losses, "t.g_lr": space.lrs, "t.d_lr": space.lrs, "t.beta1": space.beta1s,
              "t.beta2": space.beta2s, "t.d_steps": space.d_steps})
    return d


def finite_float(v: Any) -> float | None:
    """``v`` as a float if it is a finite JSON number (an int of 400 digits is not), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    try:
        f = float(v)
    except OverflowError:
        return None
    return f if np.isfinite(f) else None


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


class Policy:
    """One softmax per decision; REINFORCE with a moving-average baseline.

    Args:
        space: the search space.
        shape: the images' (height, width, channels).
        learning_rate: step size of the logits' gradient ascent.
        baseline_decay: weight of the old baseline in its moving average (Zoph & Le: 0.95 over
            thousands of samples; a CPU budget gives dozens, so the default forgets faster).
    """

    def __init__(self, space: space_mod.SearchSpace, shape: tuple[int, int, int], learning_rate: float = 0.5,
                 baseline_decay: float = 0.8) -> None:
        self.space = space
        self.shape = shape
        self.options = decisions(space, shape)
        self.logits = {name: np.zeros(len(opts)) for name, opts in self.options.items()}
        self.learning_rate = learning_rate
        self.baseline_decay = baseline_decay
        self.baseline: float | None = None
        self.updates = 0

    def probabilities(self, name: str) -> np.ndarray:
        return _softmax(self.logits[name])

    def sample(self, rng: np.random.Generator) -> Action:
        """One option per decision, each drawn from its softmax."""
        return {name: int(rng.choice(len(opts), p=self.probabilities(name))) for name, opts in self.options.items()}

    def genome(self, action: Action) -> tuple[GanGenome, Action]:
        """The repaired genome ``action`` describes, and the decisions it used (those to credit)."""
        opt = {name: self.options[name][k] for name, k in action.items()}
        used = ["g.blocks", "g.latent", "g.stem.filters", "g.stem.norm", "g.stem.activation", "d.blocks",
                "d.head.norm", "d.minibatch_std", "d.pooling", "t.loss", "t.g_lr", "t.d_lr", "t.beta1",
                "t.beta2", "t.d_steps"]
        slope = float(self.space.slopes[0])

        def act(name: str) -> dict[str, Any]:
            a = opt[name]
            return {"activation": a, "slope": slope if a == "leaky_relu" else 0.0}

        # Widths are drawn per slot but laid out as the space's sampler lays them: the generator's
        # narrowing from its stem, the discriminator's widening towards its head (DCGAN's pyramid).
        # Independent widths per slot put a narrow layer before a wide one as often as not, and with a
        # few dozen rewards the policy cannot learn the pyramid itself; this decoding is deterministic,
        # so REINFORCE's gradient of the sampled decisions stays unbiased.
        g_widths = sorted((int(opt[f"g.{i}.filters"]) for i in range(opt["g.blocks"])), reverse=True)
        d_widths = sorted(int(opt[f"d.{i}.filters"]) for i in range(opt["d.blocks"]))
        g_layers = []
        slots = [*range(opt["g.blocks"]), "out"]
        for k, i in enumerate(slots):
            p = f"g.{i}"
            used += [f"{p}.kind", f"{p}.up", f"{p}.kernel"]
            kind, up = opt[f"{p}.kind"], opt[f"{p}.up"]
            if kind == "upsample_conv":
                used.append(f"{p}.interpolation")
            if i == "out":
                gene = LayerGene(kind=kind, filters=self.shape[2], kernel=int(opt[f"{p}.kernel"]), activation="tanh",
                                 interpolation=opt[f"{p}.interpolation"], uid=f"g{k}")
            else:
                used += [f"{p}.filters", f"{p}.norm", f"{p}.activation"]
                norm = opt[f"{p}.norm"]
                gene = LayerGene(kind=kind, filters=g_widths[i], kernel=int(opt[f"{p}.kernel"]),
                                 norm=norm, **act(f"{p}.activation"), bias=space_mod._bias_for(norm),
                                 interpolation=opt[f"{p}.interpolation"], uid=f"g{k}")
            # the kind and the resolution change are separate decisions; where they disagree (a conv that
            # should upsample), the resolution wins and the layer takes the nearest kind that does it
            if up:
                g_layers.append(space_mod._to_up(replace(gene, stride=2), self.space))
            elif kind == "upsample_conv":  # upsamples by definition: the flat kind nearest to it
                g_layers.append(replace(gene, kind="conv" if "conv" in self.space.g_kinds else "deconv", stride=1,
                                        interpolation="nearest"))
            else:
                g_layers.append(replace(gene, stride=1))
        stem_norm = opt["g.stem.norm"]
        stem = LayerGene(kind="dense", filters=int(opt["g.stem.filters"]), kernel=1, norm=stem_norm,
                         **act("g.stem.activation"), bias=space_mod._bias_for(stem_norm), uid="gstem")
        # the stem grid follows from the upsampling layers: repair() sets it (and their count) below
        generator = NetworkGenome(role="generator", blocks=tuple(g_layers[:-1]), output=g_layers[-1],
                                  latent=int(opt["g.latent"]), stem=stem, stem_height=1, stem_width=1)
        d_blocks = []
        for i in range(opt["d.blocks"]):
            p = f"d.{i}"
            used += [f"{p}.down", f"{p}.filters", f"{p}.kernel", f"{p}.norm", f"{p}.activation", f"{p}.dropout"]
            norm = opt[f"{p}.norm"]
            d_blocks.append(LayerGene(kind=self.space.d_kinds[0], filters=d_widths[i],
                                      kernel=int(opt[f"{p}.kernel"]), stride=2 if opt[f"{p}.down"] else 1,
                                      norm=norm, **act(f"{p}.activation"), dropout=float(opt[f"{p}.dropout"]),
                                      bias=space_mod._bias_for(norm), uid=f"d{i}"))
        head = LayerGene(kind="dense", filters=1, kernel=1, norm=opt["d.head.norm"], uid="dhead")
        discriminator = NetworkGenome(role="discriminator", blocks=tuple(d_blocks), output=head,
                                      minibatch_std=bool(opt["d.minibatch_std"]), pooling=opt["d.pooling"])
        training = TrainingGenes(loss=opt["t.loss"], g_lr=float(opt["t.g_lr"]), d_lr=float(opt["t.d_lr"]),
                                 beta1=float(opt["t.beta1"]), beta2=float(opt["t.beta2"]),
                                 d_steps=int(opt["t.d_steps"]))
        genome = space_mod.repair(GanGenome(generator, discriminator, training), self.space, self.shape)
        return genome, {name: action[name] for name in dict.fromkeys(used)}

    def update(self, action: Action, reward: float) -> float:
        """One REINFORCE step on the decisions of ``action`` for ``reward``; returns the advantage.

        The gradient of log softmax(logits)[a] is onehot(a) - softmax(logits); the advantage is the
        reward less the moving average of the rewards before it (the first reward only sets it).
        """
        advantage = 0.0 if self.baseline is None else reward - self.baseline
        for name, k in action.items():
            grad = -self.probabilities(name)
            grad[k] += 1.0
            self.logits[name] = self.logits[name] + self.learning_rate * advantage * grad
        self.baseline = reward if self.baseline is None else (
            self.baseline_decay * self.baseline + (1 - self.baseline_decay) * reward)
        self.updates += 1
        return advantage

    def entropy(self) -> float:
        """Mean entropy of the decisions, in nats: log(options) untrained, towards 0 as it converges."""
        ent = [-(p * np.log(np.maximum(p, 1e-12))).sum() for p in map(self.probabilities, self.logits)]
        return float(np.mean(ent))

    def state_dict(self) -> dict[str, Any]:
        return {"logits": {k: v.tolist() for k, v in self.logits.items()}, "baseline": self.baseline,
                "updates": self.updates}

    def load_state_dict(self, state: Any) -> str | None:
        """Restore :meth:`state_dict`'s output; the reason it cannot be, or None."""
        if not isinstance(state, dict) or not isinstance(state.get("logits"), dict):
            return "must hold the policy's logits"
        logits = state["logits"]
        if set(logits) != set(self.options):
            return "holds the decisions of another search space"
        out = {}
        for name, v in logits.items():
            values = [finite_float(x) for x in v] if isinstance(v, list) else []
            if len(values) != len(self.options[name]) or None in values:
                return f"holds malformed logits for {name}"
            out[name] = np.asarray(values, dtype=float)
        baseline, updates = state.get("baseline"), state.get("updates")
        if baseline is not None and finite_float(baseline) is None:
            return "has a baseline that is not a finite number"
        if isinstance(updates, bool) or not isinstance(updates, int) or updates < 0:
            return "has an update count that is not a non-negative integer"
        self.logits, self.updates = out, updates
        self.baseline = None if baseline is None else finite_float(baseline)
        return None
