"""Time the GAN chapter's quick-profile training in CPU seconds (the machine is shared, so wall time lies).

Usage: .venv/bin/python bench/gan_quick.py [num_epochs] [base_filters] [latent_dim] [batch_size]
"""
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


start_cpu, start_wall = cpu(), time.perf_counter()
import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

import mlbook  # noqa: E402
from mlbook import gan, quiz, two_sample  # noqa: E402

args = [float(a) for a in sys.argv[1:]]
cfg = gan.SETTINGS["quick"]
names = ["num_epochs", "base_filters", "latent_dim", "batch_size"]
cfg = dataclasses.replace(cfg, **{n: int(v) for n, v in zip(names, args)})
ctx = mlbook.setup_chapter({"quick": cfg, "full": cfg})
print(ctx.describe())
data = gan.load_gan_images(cfg)
t0, w0 = cpu(), time.perf_counter()
trained = gan.train_dcgan(data.x_train, cfg, seed=ctx.seed, name="bench-dcgan")
t1, w1 = cpu(), time.perf_counter()
print(f"training: {t1 - t0:.1f} CPU s, {w1 - w0:.1f} wall s; from cache {trained.from_cache}")
print({k: [round(x, 3) for x in v[-3:]] for k, v in trained.history.items()})
latents = np.random.default_rng(1).standard_normal((len(data.x_test), cfg.latent_dim))
fakes = gan.generate(trained.gan.generator, latents)
result = two_sample.classifier_two_sample_test(data.x_test, fakes, num_epochs=cfg.test_epochs,
                                               num_permutations=cfg.num_permutations, seed=ctx.seed)
t2, w2 = cpu(), time.perf_counter()
print(f"two-sample, raw: acc {result.accuracy:.3f} p {result.p_value:.4f}; {t2 - t1:.1f} CPU s, {w2 - w1:.1f} s")
shown = two_sample.classifier_two_sample_test(quiz.as_shown(data.x_test), quiz.as_shown(fakes),
                                              num_epochs=cfg.test_epochs, num_permutations=cfg.num_permutations,
                                              seed=ctx.seed)
print(f"two-sample, as the quiz shows them (the chapter's measure): acc {shown.accuracy:.3f} p {shown.p_value:.4f}")
calib = two_sample.classifier_two_sample_test(data.x_test, data.x_train[: len(data.x_test)], num_epochs=cfg.test_epochs,
                                              num_permutations=cfg.num_permutations, seed=ctx.seed)
print(f"real vs real: acc {calib.accuracy:.3f} p {calib.p_value:.3f}")
print(f"total: {cpu() - start_cpu:.1f} CPU s, {time.perf_counter() - start_wall:.1f} wall s")
np.save("/tmp/bench-gan-samples.npy", trained.epoch_samples)
