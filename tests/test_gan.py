"""Training a candidate: losses against hand-computed values, inheritance, divergence, tracing, determinism."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from gan_nas import checkpoint, data, gan
from gan_nas.genome import GanGenome, LayerGene, NetworkGenome, TrainingGenes

SHAPE = (8, 8, 1)


def tiny_genome(loss: str = "nonsaturating", g_filters: int = 8, d_steps: int = 1, lr: float = 2e-4) -> GanGenome:
    """A 4x4 stem -> deconv to 8x8 generator and a one-block discriminator."""
    g = NetworkGenome(
        role="generator",
        latent=8,
        stem=LayerGene("dense", 16, kernel=1, norm="batch", activation="relu", bias=False, uid="gs"),
        stem_height=4, stem_width=4,
        blocks=(LayerGene("conv", g_filters, kernel=3, norm="batch", activation="relu", bias=False, uid="gb1"),),
        output=LayerGene("deconv", 1, kernel=3, stride=2, activation="tanh", uid="go"),
    )
    d = NetworkGenome(
        role="discriminator",
        blocks=(LayerGene("conv", 8, kernel=3, stride=2, activation="leaky_relu", slope=0.2, uid="db1"),),
        output=LayerGene("dense", 1, kernel=1, uid="do"),
    )
    return GanGenome(g, d, TrainingGenes(loss=loss, g_lr=lr, d_lr=lr, beta1=0.5, d_steps=d_steps))


@pytest.fixture(scope="module")
def tiny_data() -> data.Dataset:
    rng = np.random.default_rng(0)
    x = np.zeros((256, 8, 8, 1), np.uint8)
    for i in range(256):  # bright squares at random places on a dark ground
        r, c = rng.integers(0, 5, 2)
        x[i, r:r + 3, c:c + 3, 0] = 255
    y = np.zeros(256, np.int64)
    return data.Dataset(data.DatasetSpec("squares", SHAPE, 1), x, y, x[:32], y[:32], "fixture")


def opts(**kw) -> gan.TrainOptions:
    return gan.TrainOptions(batch_size=16, seed=kw.pop("seed", 0), **kw)


def test_losses_against_hand_values():
    real = np.array([[2.0], [-1.0]], np.float32)
    fake = np.array([[0.5], [-3.0]], np.float32)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731 - softplus
    ns_d = (sp(-2.0) + sp(1.0)) / 2 + (sp(0.5) + sp(-3.0)) / 2
    assert float(gan.d_loss("nonsaturating", real, fake)) == pytest.approx(ns_d, rel=1e-6)
    assert float(gan.g_loss("nonsaturating", fake)) == pytest.approx((sp(-0.5) + sp(3.0)) / 2, rel=1e-6)
    hinge_d = (max(0, 1 - 2) + max(0, 1 + 1)) / 2 + (max(0, 1 + 0.5) + max(0, 1 - 3)) / 2
    assert float(gan.d_loss("hinge", real, fake)) == pytest.approx(hinge_d)
    assert float(gan.g_loss("hinge", fake)) == pytest.approx(-(0.5 - 3.0) / 2)
    ls_d = 0.5 * ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + 0.5 * (0.5**2 + 3.0**2) / 2
    assert float(gan.d_loss("lsgan", real, fake)) == pytest.approx(ls_d)
    assert float(gan.g_loss("lsgan", fake)) == pytest.approx(0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2)
    assert float(gan.d_loss("wgan_gp", real, fake)) == pytest.approx((0.5 - 3.0) / 2 - (2 - 1) / 2)
    assert float(gan.g_loss("wgan_gp", fake)) == pytest.approx(1.25)


def test_gradient_penalty_of_a_linear_critic():
    """For D(x) = sum(w * x) the gradient is w everywhere, so the penalty is (|w| - 1)^2."""
    import keras

    w = np.full((8, 8, 1), 0.25, np.float32)  # |w| = sqrt(64 * 0.0625) = 2
    critic = keras.Sequential([keras.Input(SHAPE), keras.layers.Flatten(),
                               keras.layers.Dense(1, use_bias=False)])
    critic.layers[-1].set_weights([w.reshape(64, 1)])
    real = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
    fake = np.random.default_rng(1).normal(size=(4, 8, 8, 1)).astype(np.float32)
    alpha = np.random.default_rng(2).uniform(size=(4, 1, 1, 1)).astype(np.float32)
    assert float(gan.gradient_penalty(critic, real, fake, alpha)) == pytest.approx((2.0 - 1.0) ** 2, rel=1e-5)


@pytest.mark.parametrize("loss", ["nonsaturating", "hinge", "lsgan", "wgan_gp"])
def test_each_loss_trains_and_stays_finite(tiny_data, loss):
    r = gan.train_candidate(tiny_genome(loss, d_steps=2 if loss == "wgan_gp" else 1), tiny_data, 4, options=opts(),
                            score=False)
    assert r.status == "ok", r.error
    assert r.steps == 4 and r.total_steps == 4
    assert math.isfinite(r.metrics["g_loss"]) and math.isfinite(r.metrics["d_loss"])
    assert r.traces == 1  # one compiled step per candidate, never retraced


def test_inheritance_copies_exactly_the_unchanged_layers(tiny_data, tmp_path):
    import keras

    from gan_nas import builder

    parent = tiny_genome()
    assert gan.train_candidate(parent, tiny_data, 3, options=opts(), score=False, save_to=tmp_path / "p").status == "ok"
    _, pw, _ = checkpoint.load_checkpoint(tmp_path / "p")
    # child: the generator's conv block is wider, so that gene changed and the output's input shape changed
    child = replace(parent, generator=replace(parent.generator, blocks=(
        replace(parent.generator.blocks[0], filters=12),)))
    rc = gan.train_candidate(child, tiny_data, 1, options=opts(seed=5), score=False, parent=tmp_path / "p")
    assert rc.inherited == {"g": 2, "d": 2}  # stem dense + stem bn; disc conv + dense head
    keras.backend.clear_session()
    gen = builder.build_generator(child, SHAPE)
    assert gan.inherit(gen, child.generator, parent.generator, pw, "g") == {"g_gs_dense", "g_gs_bn"}
    checked = 0
    for layer in gen.layers:  # weight by weight: the stem equals the parent, nothing else does
        for i, w in enumerate(layer.get_weights()):
            key = f"{layer.name}/{i}"
            same = key in pw and pw[key].shape == w.shape and np.array_equal(pw[key], w)
            assert same == layer.name.startswith("g_gs_"), key
            checked += 1
    assert checked >= 10


def test_changed_gene_with_same_shapes_is_not_inherited(tiny_data, tmp_path):
    parent = tiny_genome()
    gan.train_candidate(parent, tiny_data, 2, options=opts(), score=False, save_to=tmp_path / "p")
    # same uid and shapes, but another activation: the gene changed, so no copy
    child = replace(parent, discriminator=replace(parent.discriminator, blocks=(
        replace(parent.discriminator.blocks[0], activation="elu"),)))
    r = gan.train_candidate(child, tiny_data, 1, options=opts(), score=False, parent=tmp_path / "p")
    assert r.inherited["d"] == 1  # only the dense head


def test_resume_continues_lineage_steps(tiny_data, tmp_path):
    g = tiny_genome()
    gan.train_candidate(g, tiny_data, 3, options=opts(), score=False, save_to=tmp_path / "a")
    r = gan.train_candidate(g, tiny_data, 2, options=opts(), score=False, resume=tmp_path / "a",
                            save_to=tmp_path / "b")
    assert r.total_steps == 5 and r.steps == 2
    assert r.inherited == {"g": 5, "d": 2}


def test_forced_nan_is_diverged_not_an_exception(tiny_data, tmp_path):
    g = tiny_genome()
    gan.train_candidate(g, tiny_data, 1, options=opts(), score=False, save_to=tmp_path / "p")
    w = dict(np.load(tmp_path / "p" / checkpoint.WEIGHTS_FILE))
    key = next(k for k in w if k.startswith("d_db1_"))
    w[key] = np.full_like(w[key], np.nan)
    np.savez(tmp_path / "p" / checkpoint.WEIGHTS_FILE, **w)
    r = gan.train_candidate(g, tiny_data, 5, options=opts(), score=False, parent=tmp_path / "p")
    assert r.status == "diverged" and r.fitness == math.inf
    assert r.steps < 5 or "non-finite" in r.error


def test_huge_learning_rate_diverges_or_stays_finite_honestly(tiny_data):
    g = tiny_genome("lsgan", lr=0.9)
    r = gan.train_candidate(g, tiny_data, 30, options=opts(), score=False)
    assert r.status in ("ok", "diverged")
    if r.status == "ok":
        assert math.isfinite(r.metrics["g_loss"])


def test_invalid_genome_is_data(tiny_data):
    g = tiny_genome()
    bad = replace(g, generator=replace(g.generator, stem_height=3))  # 3 -> 6, not 8
    r = gan.train_candidate(bad, tiny_data, 2, options=opts(), score=False)
    assert r.status == "invalid" and r.fitness == math.inf and "generator" in r.error


def test_deterministic_run_to_run(tiny_data, tmp_path):
    g = tiny_genome()
    a = gan.train_candidate(g, tiny_data, 4, options=opts(deterministic=True, seed=7), score=False,
                            save_to=tmp_path / "a")
    b = gan.train_candidate(g, tiny_data, 4, options=opts(deterministic=True, seed=7), score=False,
                            save_to=tmp_path / "b")
    assert a.metrics == b.metrics
    wa, wb = np.load(tmp_path / "a" / checkpoint.WEIGHTS_FILE), np.load(tmp_path / "b" / checkpoint.WEIGHTS_FILE)
    assert sorted(wa.files) == sorted(wb.files)
    for k in wa.files:
        np.testing.assert_array_equal(wa[k], wb[k])


def test_result_round_trips_json():
    r = gan.CandidateResult(status="diverged", metrics={"fid": math.inf}, error="x")
    d = r.to_dict()
    assert d["fitness"] is None and d["metrics"]["fid"] is None
    assert gan.CandidateResult.from_dict(d).fitness == math.inf


def test_crossover_child_inherits_from_both_parents(tiny_data, tmp_path):
    a = tiny_genome()
    b_disc = replace(a.discriminator, blocks=(replace(a.discriminator.blocks[0], uid="db9", filters=6),),
                     output=replace(a.discriminator.output, uid="do9"))
    b = replace(a, generator=replace(a.generator, stem=replace(a.generator.stem, uid="gs9")), discriminator=b_disc)
    gan.train_candidate(a, tiny_data, 2, options=opts(), score=False, save_to=tmp_path / "a")
    gan.train_candidate(b, tiny_data, 3, options=opts(), score=False, save_to=tmp_path / "b")
    child = replace(a, discriminator=b.discriminator)  # a's generator, b's discriminator
    r = gan.train_candidate(child, tiny_data, 1, options=opts(), score=False, parent=[tmp_path / "a", tmp_path / "b"])
    assert r.inherited == {"g": 5, "d": 2}  # every G layer from a, both D layers from b
    assert r.total_steps == 3 + 1  # the longer lineage


def test_max_seconds_caps_training_time(tiny_data):
    r = gan.train_candidate(tiny_genome(), tiny_data, 10**6, options=opts(max_seconds=1.0), score=False)
    assert r.status == "ok" and 1 < r.steps < 10**6 and r.total_steps == r.steps
    assert r.seconds["train"] < 10


def test_earlier_candidates_graphs_are_freed(tiny_data):
    """TensorFlow's gradient registry kept every traced train step alive (KerasTuner's leak, here)."""
    import dataclasses
    import gc

    from tensorflow.python.framework import func_graph

    def step_graphs() -> int:
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, func_graph.FuncGraph) and o.name == "step")

    g = tiny_genome()
    swish = dataclasses.replace(g, generator=dataclasses.replace(
        g.generator, blocks=(dataclasses.replace(g.generator.blocks[0], activation="swish"),)))
    for genome in (g, swish, swish, g):  # the optimizer's all-reduce and swish both register custom gradients
        assert gan.train_candidate(genome, tiny_data, 2, options=opts(), score=False).status == "ok"
    assert step_graphs() <= 1  # only the last candidate's, until the next one starts


@pytest.mark.parametrize("loss", ["nonsaturating", "wgan_gp"])
def test_float16_trains_with_loss_scaling(tiny_data, tmp_path, loss):
    """The GPU path for GPUs without bfloat16 (mixed_float16) runs here on the CPU: its losses are
    scaled and its gradients unscaled by LossScaleOptimizer, which checkpoints and resumes."""
    r = gan.train_candidate(tiny_genome(loss, d_steps=2), tiny_data, 4, options=opts(policy="mixed_float16"),
                            score=False, save_to=tmp_path / "a")
    assert r.status == "ok" and math.isfinite(r.metrics["g_loss"]) and math.isfinite(r.metrics["d_loss"])
    _, weights, optimizer_state = checkpoint.load_checkpoint(tmp_path / "a")
    assert all(w.dtype == np.float32 for w in weights.values())  # variables stay float32
    gan.train_candidate(tiny_genome(loss, d_steps=2), tiny_data, 1, options=opts(policy="float32"), score=False,
                        save_to=tmp_path / "f32")
    plain = checkpoint.load_checkpoint(tmp_path / "f32")[2]
    assert len(optimizer_state) > len(plain)  # the loss scale and its counter are optimizer state too
    again = gan.train_candidate(tiny_genome(loss, d_steps=2), tiny_data, 2, options=opts(policy="mixed_float16"),
                                score=False, resume=tmp_path / "a")
    assert again.status == "ok" and again.total_steps == 6


def test_precision_policy_follows_the_setting():
    from gan_nas import precision

    assert precision.policy(False) == "float32"
    assert precision.policy(True) == (precision.gpu_policy() or "mixed_bfloat16")


def test_a_checkpoint_whose_weights_header_lies_is_a_checkpoint_error(tmp_path):
    import io
    import json
    import zipfile

    from gan_nas.errors import CheckpointError

    ckpt = tmp_path / "c"
    ckpt.mkdir()
    (ckpt / checkpoint.META_FILE).write_text(json.dumps({"genome": tiny_genome().to_dict(), "total_steps": 1}))
    buf = io.BytesIO()  # an array header promising 10**14 floats (364 TiB), with 64 bytes behind it
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**14,)})
    with zipfile.ZipFile(ckpt / checkpoint.WEIGHTS_FILE, "w") as z:
        z.writestr("dense/0.npy", buf.getvalue() + bytes(64))
    with pytest.raises(CheckpointError, match=r"missing or damaged \(.*truncated: its header promises"):
        checkpoint.load_checkpoint(ckpt)
    np.savez(ckpt / checkpoint.WEIGHTS_FILE, **{"dense/0": np.ones(3, np.float32)})  # a good one reads back
    assert list(checkpoint.load_checkpoint(ckpt)[1]) == ["dense/0"]


@pytest.mark.parametrize("meta, why", [
    ({}, "has no genome"),
    ({"genome": {"generator": 1}, "total_steps": 3}, "meta.json's genome"),
    ({"genome": "GENOME", "total_steps": "3"}, "total_steps is '3'"),
    ({"genome": "GENOME"}, "total_steps is None"),
    ({"genome": "GENOME", "total_steps": -1}, "total_steps is -1"),
    ({"genome": "GENOME", "total_steps": 3, "ema_steps": 2.5}, "ema_steps is 2.5"),
])
def test_a_checkpoint_whose_meta_lost_its_genome_or_steps_is_a_checkpoint_error(tmp_path, meta, why):
    # a survivor's meta.json of {} had every child journaled as failed (KeyError: 'genome') and the
    # search went on without the lineage; it must stop the run as damaged instead
    import json

    from gan_nas.errors import CheckpointError

    ckpt = tmp_path / "c"
    ckpt.mkdir()
    meta = {k: tiny_genome().to_dict() if v == "GENOME" else v for k, v in meta.items()}
    (ckpt / checkpoint.META_FILE).write_text(json.dumps(meta))
    np.savez(ckpt / checkpoint.WEIGHTS_FILE, **{"dense/0": np.ones(3, np.float32)})
    with pytest.raises(CheckpointError, match=rf"missing or damaged \(.*{why}"):
        checkpoint.load_checkpoint(ckpt)


def test_train_options_from_config_reads_each_section_and_shares_its_defaults():
    import dataclasses

    from gan_nas.config import Config

    cfg = Config()
    assert dataclasses.replace(gan.TrainOptions.from_config(cfg, 0), mixed_precision=False) == gan.TrainOptions()
    cfg = dataclasses.replace(
        cfg, data=dataclasses.replace(cfg.data, batch_size=17, shuffle_buffer=33),
        training=dataclasses.replace(cfg.training, deterministic=True, log_every=7, max_seconds=3.5,
                                     mixed_precision=False),
        fitness=dataclasses.replace(cfg.fitness, n_search=99, noise_seed=5, batch_size=11))
    assert gan.TrainOptions.from_config(cfg, 42) == gan.TrainOptions(
        batch_size=17, seed=42, mixed_precision=False, deterministic=True, log_every=7, n_search=99, noise_seed=5,
        score_batch=11, shuffle_buffer=33, max_seconds=3.5)


def test_the_generator_average_is_the_warmed_up_moving_average_and_what_is_loaded(tiny_data, tmp_path):
    """training.g_ema: after one step the average is d x initial + (1 - d) x trained weights, with the
    warm-up's d = min(g_ema, 2 / 11); training itself is unchanged; load_generator gives the average;
    a continuation goes on averaging from the checkpoint's average and its count."""
    g = tiny_genome()
    o = opts(deterministic=True, seed=3)
    gen0, _, _ = gan._build(g, SHAPE, o)  # the initial weights train_candidate builds with this seed
    w0 = checkpoint._layer_weights(gen0)
    gan.train_candidate(g, tiny_data, 1, options=o, score=False, save_to=tmp_path / "plain")
    gan.train_candidate(g, tiny_data, 1, options=replace(o, g_ema=0.5), score=False, save_to=tmp_path / "avg")
    plain, avg = np.load(tmp_path / "plain" / checkpoint.WEIGHTS_FILE), np.load(tmp_path / "avg" / checkpoint.WEIGHTS_FILE)
    assert not any(k.startswith(checkpoint.EMA_PREFIX) for k in plain.files)
    d = min(0.5, 2 / 11)
    for k, w in w0.items():
        np.testing.assert_array_equal(avg[k], plain[k])  # the average does not change training
        np.testing.assert_allclose(avg[checkpoint.EMA_PREFIX + k], d * w + (1 - d) * plain[k], rtol=1e-5, atol=1e-6)
    loaded = checkpoint._layer_weights(gan.load_generator(g, tmp_path / "avg", SHAPE))
    for k, w in loaded.items():
        np.testing.assert_array_equal(w, avg[checkpoint.EMA_PREFIX + k])
    r = gan.train_candidate(g, tiny_data, 2, options=replace(o, g_ema=0.5), score=False, resume=tmp_path / "avg",
                            save_to=tmp_path / "more")
    assert r.status == "ok" and checkpoint.load_checkpoint(tmp_path / "more")[0]["ema_steps"] == 3
    # an average cut down (one of its layers gone) is a damaged checkpoint, not an average started afresh
    from gan_nas.errors import CheckpointError

    cut = {k: v for k, v in np.load(tmp_path / "more" / checkpoint.WEIGHTS_FILE).items()}
    del cut[next(k for k in cut if k.startswith(checkpoint.EMA_PREFIX))]
    np.savez(tmp_path / "more" / checkpoint.WEIGHTS_FILE, **cut)
    with pytest.raises(CheckpointError, match="generator average"):
        gan.train_candidate(g, tiny_data, 1, options=replace(o, g_ema=0.5), score=False, resume=tmp_path / "more")
