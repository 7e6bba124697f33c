"""Time the YOLO chapter's training and evaluation (quick profile by default) and print CPU and wall seconds.

Usage: .venv/bin/python bench/yolo_bench.py [num_train num_epochs [key=value ...]]
"""

import dataclasses
import resource
import sys
import time

import numpy as np

from mlbook import detection, yolo
from mlbook.seeding import seed_everything
from mlbook.training import EpochLine


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    cfg = yolo.SETTINGS["quick"]
    if len(sys.argv) >= 3:
        changes = {"num_train": int(sys.argv[1]), "num_epochs": int(sys.argv[2])}
        for item in sys.argv[3:]:
            key, value = item.split("=")
            changes[key] = type(getattr(cfg, key))(value) if key != "font_sizes" else tuple(map(int, value.split(",")))
        cfg = dataclasses.replace(cfg, **changes)
    print(cfg)
    seed_everything(1234)
    start_wall, start_cpu = time.perf_counter(), cpu_seconds()
    detector = yolo.YoloDetector(cfg.spec, cfg.lambda_coord, cfg.lambda_noobj, cfg.head)
    detector(np.zeros((1, cfg.image_size, cfg.image_size, 1), np.float32))
    history = yolo.train_detector(detector, cfg, seed=1234, callbacks=[EpochLine(every=100)])
    trained_wall, trained_cpu = time.perf_counter() - start_wall, cpu_seconds() - start_cpu
    test_set = cfg.generate("test", 1234)
    found = yolo.detect(detector, test_set.images, cfg.spec, cfg.score_threshold, cfg.nms_iou_threshold)
    scores = detection.evaluate_detections(found, test_set.labels, len(yolo.CLASS_NAMES))
    print(f"train: {trained_cpu:.1f} CPU s, {trained_wall:.1f} wall s; total {cpu_seconds() - start_cpu:.1f} CPU s, "
          f"{time.perf_counter() - start_wall:.1f} wall s")
    print("mAP@0.5", round(scores.mean_ap(0.5), 3), "mAP@0.75", round(scores.mean_ap(0.75), 3),
          "AP", {t: np.round(a, 3).tolist() for t, a in scores.ap.items()})
    print("final terms", {k: round(v[-1], 4) for k, v in history.items()})


if __name__ == "__main__":
    main()
