"""What one candidate costs besides its training: building, tracing, the traced step's first run, scoring.

Run: python experiments/profile_candidate.py RUN_DIR c0000 c0001 ...   [--threads 1] [--grappler-off]
     [--no-traceback-filtering]

For each named trial of a search's run directory, rebuilds its genome with the run's config (on one
TensorFlow thread by default, as a pool's worker has) and times, in this order: building the two
networks (``gan._build``), their optimizers, the tf.data stream, tracing the train step (its concrete
function), the traced step's first run, a later run, and the mean of 5 more; then each part of scoring
``fitness.n_search`` samples: drawing them, their features, FID, KID and the k-NN quality metrics. A
candidate's fixed cost is everything but the later runs; bench_search.py's outside-train share cannot go
below that cost over the candidate's seconds. The first trial also pays for loading the data and the
reference's k-NN radii: profile a throwaway id first, or read it as such. Figures: the README's
bench_search row.
"""

from __future__ import annotations

import argparse
import time

from gan_nas import runtime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("ids", nargs="+")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grappler-off", action="store_true", help="TensorFlow's graph optimizer off")
    ap.add_argument("--no-traceback-filtering", action="store_true", help="Keras's traceback filtering off")
    args = ap.parse_args()
    runtime.start_tensorflow(args.threads)
    import keras
    import numpy as np
    import tensorflow as tf

    from gan_nas import fitness, gan, quality
    from gan_nas.evaluation import dataset_and_reference
    from gan_nas.genome import GanGenome
    from gan_nas.runs import open_run

    if args.grappler_off:
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
    if args.no_traceback_filtering:
        keras.config.disable_traceback_filtering()
    store, cfg = open_run(args.run_dir)
    records = {r["id"]: r for r in store.journal()}
    ds, ref = dataset_and_reference(cfg)
    shape = tuple(ds.spec.shape)
    clock = time.perf_counter
    for cid in args.ids:
        genome = GanGenome.from_dict(records[cid]["genome"])
        opt = gan.TrainOptions.from_config(cfg, records[cid]["seed"])
        t0 = clock()
        gen, disc, policy = gan._build(genome, shape, opt)
        t1 = clock()
        optimizers = gan._optimizers(genome.training, gen, disc, policy)
        t2 = clock()
        step, _ = gan._compiled_step(genome, gen, disc, optimizers, opt.batch_size, shape, opt.seed)
        batches = gan._stream(ds, opt, genome.training.d_steps, shape)
        t3 = clock()
        x = next(batches)
        step.get_concrete_function(tf.TensorSpec(x.shape, tf.float32))
        t4 = clock()
        step(x)
        t5 = clock()
        step(next(batches))
        t6 = clock()
        for _ in range(5):
            step(next(batches))
        t7 = clock()
        print(f"{cid}: build {t1 - t0:.2f} s, optimizers {t2 - t1:.2f}, stream {t3 - t2:.2f}, trace {t4 - t3:.2f}, "
              f"first run {t5 - t4:.2f}, second {t6 - t5:.2f}, later (mean of 5) {(t7 - t6) / 5:.2f}")

        n, latent = opt.n_search, genome.generator.latent
        b = min(ref.batch_size, n)
        t0 = clock()
        draw = tf.function(lambda z, g=gen: g(z, training=False), autograph=False,
                           input_signature=[tf.TensorSpec((b, latent), tf.float32)])
        images = np.concatenate([np.asarray(draw(chunk))[:m] for _, m, chunk in
                                 fitness.fixed_batches(fitness.latent_noise(n, latent, opt.noise_seed), b)])
        t1 = clock()
        features, _ = ref.extract_with_logits(images)
        t2 = clock()
        mu, sigma = fitness.activation_statistics(features)
        fitness.frechet_distance(mu, sigma, ref.mu, ref.sigma)
        t3 = clock()
        fitness.kernel_inception_distance(ref.features, features)
        t4 = clock()
        ks = (fitness.K_PRECISION_RECALL, fitness.K_DENSITY_COVERAGE)
        quality.quality_scores(ref.features[:fitness.MAX_QUALITY_POINTS], features[:fitness.MAX_QUALITY_POINTS],
                               *ks, real_radii=ref.real_radii(ks))
        t5 = clock()
        print(f"{cid}: scoring n={n}: draw {t1 - t0:.2f} s, features {t2 - t1:.2f}, FID {t3 - t2:.2f}, "
              f"KID {t4 - t3:.2f}, k-NN metrics {t5 - t4:.2f}")


if __name__ == "__main__":
    main()
