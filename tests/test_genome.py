"""Genomes: JSON round trips, strict parsing, validation rules, loading, pure parameter counts."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from gan_nas.baseline import dcgan
from gan_nas.errors import GenomeError, RunDirError
from gan_nas.genome import (
    GanGenome,
    LayerGene,
    NetworkGenome,
    count_params,
    forward_macs,
    step_macs,
    validate,
)
from gan_nas.runs import load_genome
from gan_nas.space import SearchSpace, sample

MNIST = (28, 28, 1)
CIFAR = (32, 32, 3)


def test_genome_error_is_reexported():
    import gan_nas.errors
    import gan_nas.genome

    assert gan_nas.genome.GenomeError is gan_nas.errors.GenomeError


@pytest.mark.parametrize("shape", [MNIST, CIFAR])
def test_round_trips(shape):
    genomes = [dcgan(shape)] + [sample(SearchSpace(), shape, np.random.default_rng(s)) for s in range(10)]
    for g in genomes:
        assert GanGenome.from_dict(g.to_dict()) == g
        assert GanGenome.from_json(g.to_json()) == g
        assert GanGenome.from_json(g.to_json(indent=None)) == g
        assert json.loads(g.to_json()) == g.to_dict()
    assert len({*genomes, *genomes}) == len(genomes)  # hashable


def test_frozen():
    g = dcgan(MNIST)
    with pytest.raises(AttributeError):
        g.training.loss = "hinge"  # type: ignore[misc]


def _edit(d: dict, path: list, value=None, delete=False) -> str:
    node = d
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(d)


@pytest.mark.parametrize(
    "path, value, delete, match",
    [
        (
            ["generator", "blocks", 0, "kernel"],
            None,
            True,
            r"generator block 0 is missing the field 'kernel'",
        ),
        (["training", "loss"], None, True, r"training is missing the field 'loss'"),
        (["generator", "blocks", 1, "kind"], "conv3d", False, r"unknown kind 'conv3d'"),
        (["discriminator", "pooling"], "max", False, r"unknown pooling 'max'"),
        (["generator", "blocks", 0, "filters"], "64", False, r"'filters' must be an integer"),
        (["generator", "blocks", 0, "filters"], True, False, r"'filters' must be an integer"),
        (["generator", "blocks", 0, "bias"], 0, False, r"'bias' must be true or false"),
        (["training", "g_lr"], "fast", False, r"'g_lr' must be a number"),
        (["generator", "blocks"], {}, False, r"'blocks' must be a list"),
        (["generator", "blocks", 0], [], False, r"generator block 0 must be a JSON object"),
        (["generator", "blocks", 0, "color"], "red", False, r"unknown field\(s\): color"),
        (["discriminator", "latent"], 100, False, r"discriminator has unknown field\(s\): latent"),
        (["generator", "role"], "critic", False, r"unknown role 'critic'"),
        (
            ["generator", "role"],
            "discriminator",
            False,
            r"generator: role must be 'generator', got 'discriminator'",
        ),
        (["extra"], 1, False, r"genome has unknown field\(s\): extra"),
    ],
)
def test_from_json_rejects_bad_input(path, value, delete, match):
    text = _edit(dcgan(MNIST).to_dict(), path, value, delete)
    with pytest.raises(GenomeError, match=match):
        GanGenome.from_json(text)


@pytest.mark.parametrize("text", ["{", "", "[1, 2]", "null", "42"])
def test_from_json_rejects_malformed(text):
    with pytest.raises(GenomeError, match=r"malformed|must be a JSON object"):
        GanGenome.from_json(text)


# --------------------------------------------------------------------------- validate


def _g(genome: GanGenome, **changes) -> GanGenome:
    return replace(genome, generator=replace(genome.generator, **changes))


def _d(genome: GanGenome, **changes) -> GanGenome:
    return replace(genome, discriminator=replace(genome.discriminator, **changes))


def _gblock(genome: GanGenome, i: int, **changes) -> GanGenome:
    blocks = list(genome.generator.blocks)
    blocks[i] = replace(blocks[i], **changes)
    return _g(genome, blocks=tuple(blocks))


def _dblock(genome: GanGenome, i: int, **changes) -> GanGenome:
    blocks = list(genome.discriminator.blocks)
    blocks[i] = replace(blocks[i], **changes)
    return _d(genome, blocks=tuple(blocks))


BASE = dcgan(MNIST)
DOWN = LayerGene("conv", 16, kernel=3, stride=2, activation="relu", uid="x")

BAD = [
    (_gblock(BASE, 1, stride=1), r"end at 14x14, not the image size 28x28"),
    (
        _gblock(BASE, 0, stride=2),
        r"generator output \(uid out, deconv\): upsamples to 56x56, past the image size 28x28",
    ),
    (_g(BASE, stem_height=8, stem_width=8), r"past the image size 28x28"),
    (_gblock(BASE, 1, filters=0), r"generator block 1 \(uid b2, deconv\): filters must be from 1 to 65,536"),
    (_gblock(BASE, 1, filters=10**9), r"generator block 1 \(uid b2, deconv\): filters must be from 1 to 65,536"),
    (
        _gblock(BASE, 0, activation="sigmoid"),
        r"generator block 0 \(uid b1, deconv\): unknown activation 'sigmoid'",
    ),
    (_gblock(BASE, 0, activation="tanh"), r"hidden layers need a nonlinear activation"),
    (_gblock(BASE, 0, kind="dense"), r"kind 'dense' is not allowed here"),
    (_gblock(BASE, 0, kind="conv3d"), r"kind 'conv3d' is not allowed here"),
    (_gblock(BASE, 0, norm="group"), r"unknown norm 'group'"),
    (_gblock(BASE, 0, norm="spectral"), r"generator block 0 .*: the generator allows no spectral norm"),
    (_gblock(BASE, 0, dropout=0.2), r"the generator allows no spectral norm and no dropout"),
    (
        _gblock(BASE, 1, kind="conv"),
        r"generator block 1 \(uid b2, conv\): generator conv layers must have stride 1",
    ),
    (_gblock(BASE, 0, kind="upsample_conv"), r"upsample_conv must upsample by 2"),
    (_gblock(BASE, 0, kernel=0), r"kernel must be within \[1, 9\]"),
    (_gblock(BASE, 0, stride=3), r"stride must be 1 or 2"),
    (_gblock(BASE, 0, slope=0.0), r"leaky_relu needs a positive slope"),
    (_gblock(BASE, 0, slope=1.5), r"slope must be within \[0, 1\)"),
    (_gblock(BASE, 0, interpolation="cubic"), r"unknown interpolation 'cubic'"),
    (_gblock(BASE, 0, uid="B-1"), r"uid must be 1-16 lowercase letters or digits"),
    (_gblock(BASE, 0, uid="b2"), r"generator block 1 \(uid b2, deconv\): uid 'b2' is used twice"),
    (
        _g(BASE, output=replace(BASE.generator.output, filters=3)),
        r"output .*filters must equal the image channels 1",
    ),
    (_g(BASE, output=replace(BASE.generator.output, activation="relu")), r"output layer must be tanh"),
    (_g(BASE, stem=None), r"generator: the dense stem is missing"),
    (
        _g(BASE, stem=replace(BASE.generator.stem, kind="conv")),
        r"generator stem \(uid stem, conv\): kind 'conv'",
    ),
    (_g(BASE, latent=0), r"latent size must be from 1 to 65,536"),
    (_g(BASE, latent=10**7), r"latent size must be from 1 to 65,536, got 10000000"),
    (_g(BASE, minibatch_std=True), r"belong to the discriminator"),
    (_d(BASE, latent=100), r"latent and stem belong to the generator"),
    (_d(BASE, blocks=()), r"discriminator: needs at least one block"),
    (_d(BASE, pooling="max"), r"unknown pooling 'max'"),
    (
        _dblock(BASE, 0, dropout=1.0),
        r"discriminator block 0 \(uid b1, conv\): dropout must be within \[0, 1\)",
    ),
    (_dblock(BASE, 0, dropout=-0.1), r"dropout must be within"),
    (
        _dblock(BASE, 0, kind="deconv"),
        r"discriminator block 0 \(uid b1, deconv\): kind 'deconv' is not allowed",
    ),
    (
        _d(BASE, blocks=tuple(replace(DOWN, uid=f"x{i}") for i in range(6))),
        r"discriminator block 5 \(uid x5, conv\): stride 2 cannot downsample a 1x1 input",
    ),
    (_d(BASE, output=replace(BASE.discriminator.output, filters=2)), r"head must be dense with 1 unit"),
    (_d(BASE, output=replace(BASE.discriminator.output, activation="relu")), r"linear activation"),
    (replace(BASE, training=replace(BASE.training, loss="bce")), r"training: unknown loss 'bce'"),
    (replace(BASE, training=replace(BASE.training, g_lr=0.0)), r"training: g_lr must be within"),
    (replace(BASE, training=replace(BASE.training, d_lr=float("nan"))), r"training: d_lr must be within"),
    (replace(BASE, training=replace(BASE.training, beta1=1.0)), r"training: beta1 must be within \[0, 1\)"),
    (replace(BASE, training=replace(BASE.training, d_steps=0)), r"training: d_steps must be from 1 to 100"),
    (replace(BASE, training=replace(BASE.training, d_steps=10**9)), r"training: d_steps must be from 1 to 100"),
    (
        replace(_dblock(BASE, 1, norm="batch"), training=replace(BASE.training, loss="wgan_gp")),
        r"discriminator block 1 \(uid b2, conv\): batch norm is not allowed with the wgan_gp",
    ),
    (replace(BASE, generator=BASE.discriminator, discriminator=BASE.generator), r"roles"),
    (
        _gblock(BASE, 0, filters="64"),
        r"generator block 0 \(uid b1, deconv\): field 'filters' has the wrong type",
    ),
    (_gblock(BASE, 0, uid=7), r"field 'uid' has the wrong type"),
    (_g(BASE, latent=100.0), r"generator network: field 'latent' has the wrong type"),
    (
        replace(BASE, training=replace(BASE.training, d_steps=True)),
        r"training: field 'd_steps' has the wrong",
    ),
]


@pytest.mark.parametrize("genome, match", BAD)
def test_validate_rejects(genome, match):
    with pytest.raises(GenomeError, match=match):
        validate(genome, MNIST)


@pytest.mark.parametrize("shape", [(28, 28), (28, 0, 1), (28.5, 28, 1), "abc", None])
def test_validate_rejects_bad_image_shape(shape):
    with pytest.raises(GenomeError, match=r"image shape"):
        validate(BASE, shape)


def test_validate_rejects_non_genome():
    with pytest.raises(GenomeError, match=r"expected a GanGenome"):
        validate(BASE.to_dict(), MNIST)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "space, genome, match",
    [
        (
            SearchSpace(max_g_params=1_000_000),
            BASE,
            r"generator: 2,330,944 parameters exceed the cap of 1,000,000",
        ),
        (SearchSpace(max_d_params=100_000), BASE, r"discriminator: 212,865 parameters exceed the cap"),
        (SearchSpace(min_g_blocks=3), BASE, r"generator: 2 blocks, the space allows 3 to 4"),
        (SearchSpace(max_d_blocks=1), BASE, r"discriminator: 2 blocks, the space allows 1 to 1"),
        (SearchSpace(latent_sizes=(64, 128)), BASE, r"latent size 100 is not one of \[64, 128\]"),
        (SearchSpace(max_filters=128), BASE, r"generator stem \(uid stem, dense\): filters 256 outside"),
        (SearchSpace(kernels=(3, 4)), BASE, r"generator block 0 \(uid b1, deconv\): kernel 5 is outside"),
        (SearchSpace(activations=("relu",)), BASE, r"activation 'leaky_relu' is outside"),
        (SearchSpace(g_kinds=("upsample_conv", "conv")), BASE, r"kind 'deconv' is outside"),
        (SearchSpace(lrs=(2e-4, 5e-4)), BASE, r"g_lr 0.0001 is outside the space's range"),
        (SearchSpace(losses=("hinge",)), BASE, r"loss 'nonsaturating' is outside"),
        (SearchSpace(dropouts=(0.0, 0.2)), BASE, r"dropout 0.3 exceeds"),
        (SearchSpace(stem_sides=(14, 14)), BASE, r"stem grid 7x7 is not one of \[\(14, 14\)\]"),
    ],
)
def test_validate_with_space(space, genome, match):
    with pytest.raises(GenomeError, match=match):
        validate(genome, MNIST, space)


def test_dcgan_in_default_space():
    for shape in (MNIST, CIFAR):
        validate(dcgan(shape), shape, SearchSpace())


def test_count_params_dcgan():
    assert count_params(BASE.generator, MNIST) == 2_330_944
    assert count_params(BASE.discriminator, MNIST) == 212_865


def test_count_params_by_hand():
    d = NetworkGenome(
        role="discriminator",
        blocks=(
            LayerGene("conv", 8, kernel=3, stride=2, norm="spectral", activation="relu", uid="a"),
            LayerGene("conv", 4, kernel=3, stride=1, norm="layer", activation="relu", bias=False, uid="b"),
        ),
        output=LayerGene("dense", 1, kernel=1, norm="spectral", uid="h"),
        minibatch_std=True,
        pooling="gap",
    )
    # conv 3*3*1*8 + 8 bias + 8 u; conv 3*3*8*4, LN 2*4; dense (4+1)*1 + 1 bias + 1 u
    assert count_params(d, (6, 6, 1)) == (72 + 8 + 8) + (288 + 8) + (5 + 1 + 1)


def test_forward_macs_by_hand():
    """DCGAN, 28x28: every kernel weight (and bias, norm parameter) once per position it visits."""
    g = BASE.generator
    # stem dense 100 -> 7*7*256 (+BN); deconv 5x5 256->128 at 7x7 input; 128->64 at 7x7; 64->1 at 14x14
    stem = 100 * 12544 + 4 * 12544
    d1 = (25 * 256 * 128 + 4 * 128) * 49
    d2 = (25 * 128 * 64 + 4 * 64) * 49
    out = 25 * 64 * 1 * 196
    assert forward_macs(g, MNIST) == stem + d1 + d2 + out
    # D: conv 5x5 1->64 to 14x14, conv 5x5 64->128 to 7x7, dense 6272 -> 1
    assert forward_macs(BASE.discriminator, MNIST) == (25 * 64 + 64) * 196 + (25 * 64 * 128 + 128) * 49 + 6273
    fg, fd = forward_macs(g, MNIST), forward_macs(BASE.discriminator, MNIST)
    assert step_macs(BASE, MNIST) == fg * 3 + fd * 8  # d_steps = 1


# --------------------------------------------------------------------------- load_genome


def test_load_dcgan():
    assert load_genome("dcgan", MNIST) == dcgan(MNIST)
    with pytest.raises(GenomeError, match=r"needs an image shape"):
        load_genome("dcgan")


def test_load_from_files(tmp_path):
    g = sample(SearchSpace(), CIFAR, np.random.default_rng(3))
    (tmp_path / "g.json").write_text(g.to_json())
    assert load_genome(str(tmp_path / "g.json")) == g
    assert load_genome(str(tmp_path / "g.json"), CIFAR) == g
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "genome.json").write_text(g.to_json())
    assert load_genome(str(run)) == g
    cand = run / "candidates" / "7"
    cand.mkdir(parents=True)
    (cand / "genome.json").write_text(dcgan(CIFAR).to_json())
    assert load_genome(str(cand)) == dcgan(CIFAR)


def test_load_errors(tmp_path):
    with pytest.raises(RunDirError, match=r"does not exist"):
        load_genome(str(tmp_path / "nope"))
    with pytest.raises(RunDirError, match=r"does not exist"):
        load_genome("missing.json")
    with pytest.raises(GenomeError, match=r"unknown genome 'resnet'"):
        load_genome("resnet")
    with pytest.raises(RunDirError, match=r"holds no genome"):
        load_genome(str(tmp_path))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GenomeError, match=r"bad.json: genome JSON is malformed"):
        load_genome(str(bad))
    ok = tmp_path / "ok.json"
    ok.write_text(dcgan(MNIST).to_json())
    with pytest.raises(GenomeError, match=r"image (channels 3|size 32x32)"):
        load_genome(str(ok), CIFAR)


def test_genome_files_that_are_too_deep_too_long_or_not_files(tmp_path):
    import os

    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(GenomeError, match=r"deep.json: genome JSON is malformed: JSON nested too deeply"):
        load_genome(str(deep))
    digits = tmp_path / "digits.json"
    digits.write_text('{"latent_dim": ' + "9" * 5000 + "}")
    with pytest.raises(GenomeError, match=r"digits.json: genome JSON is malformed: Exceeds the limit"):
        load_genome(str(digits))
    with pytest.raises(GenomeError, match=r"cannot read genome file /dev/zero: a device, not a regular file"):
        load_genome("/dev/zero")
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    with pytest.raises(GenomeError, match=r"pipe.json: a FIFO \(named pipe\), not a regular file"):
        load_genome(str(fifo))


def test_a_genome_with_too_many_blocks_is_refused_before_parsing_them():
    d = dcgan(MNIST).to_dict()
    d["generator"]["blocks"] = [d["generator"]["blocks"][0]] * 300_000
    with pytest.raises(GenomeError, match="300,000 blocks; a network has at most 64"):
        GanGenome.from_dict(d)
