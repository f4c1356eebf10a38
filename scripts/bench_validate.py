#!/usr/bin/env python3
"""Time data.validate on synthetic RF100-VL against a pycocotools baseline and the I/O floor.

    .venv/bin/python scripts/bench_validate.py            # full count: 164,149 images, 1,355,491 boxes
    .venv/bin/python scripts/bench_validate.py --small    # 2% of that, for a quick run
    .venv/bin/python scripts/bench_validate.py --scale 0.25 --root /scratch/bench

In one run, on the same data with a warm page cache: the floor (parse every json and stat every image,
in as many processes as the validator), data.validate cold (no cache), data.validate cached, and the
baseline (pycocotools COCO() per file plus os.path.exists per image, one process, as a script would).
Goals: cold <= 1.5x floor, >= 5x faster than the baseline, cached < 0.5 s.
"""

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tasks  # noqa: E402,F401  (tasks.py sets up the tasks package path)
from tasks.lib.data import coco, synth  # noqa: E402


def annotation_files(root: str) -> list[tuple[str, str]]:
    """(json, image folder) of every split of every dataset present."""
    pairs = []
    for name in coco.RF100VL_NAMES:
        for split in coco.RF100VL_SPLITS:
            folder = os.path.join(root, name, split)
            path = os.path.join(folder, coco.RF100VL_JSON)
            if os.path.isfile(path):
                pairs.append((path, folder))
    return pairs


def floor_one(pair: tuple[str, str], parser: str) -> int:
    """Parse one json and stat each image it lists: what any validator must at least do."""
    path, folder = pair
    with open(path, "rb") as handle:
        raw = handle.read()
    if parser == "orjson":
        import orjson

        data = orjson.loads(raw)
    else:
        data = json.loads(raw)
    for image in data["images"]:
        os.stat(os.path.join(folder, image["file_name"]))
    return len(data["images"])


def floor(pairs: list, parser: str, workers: int) -> float:
    started = time.perf_counter()
    pairs = sorted(pairs, key=lambda pair: -os.path.getsize(pair[0]))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(floor_one, pairs, [parser] * len(pairs)))
    return time.perf_counter() - started


def baseline(pairs: list) -> float | None:
    """pycocotools COCO(file) per json plus os.path.exists per image, in one process."""
    try:
        from pycocotools.coco import COCO
    except ImportError:
        return None
    started = time.perf_counter()
    for path, folder in pairs:
        with contextlib.redirect_stdout(io.StringIO()):
            ground_truth = COCO(path)
        for image in ground_truth.dataset["images"]:
            os.path.exists(os.path.join(folder, image["file_name"]))
    return time.perf_counter() - started


def ensure_pycocotools() -> bool:
    try:
        import pycocotools  # noqa: F401

        return True
    except ImportError:
        pass
    print("pycocotools is missing; installing it into this environment for the baseline ...", flush=True)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "pycocotools"], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"could not install pycocotools ({done.stderr.strip().splitlines()[-1:]}); the baseline is skipped")
        return False
    return True


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="where the synthetic data goes (default: a folder under the temp dir)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of RF100-VL's counts (default: 1.0)")
    parser.add_argument("--small", action="store_true", help="same as --scale 0.02")
    parser.add_argument("--workers", type=int, default=coco.available_cpus(), help="processes (default: all CPUs)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scale = 0.02 if args.small else args.scale
    root = args.root or os.path.join(tempfile.gettempdir(), f"sam3-bench-rf100vl-{scale:g}-{args.seed}")

    plan = synth.plan("rf100vl", root, full=True, scale=scale, seed=args.seed)
    stamp = Path(root) / f".bench-{plan.images}-{plan.boxes}"
    if stamp.exists():
        print(f"reusing {root}: {plan.images:,} images, {plan.boxes:,} boxes")
    else:
        print(f"writing {plan.images:,} images, {plan.boxes:,} boxes under {root} ...", flush=True)
        seconds, _ = timed(synth.write, plan, args.workers)
        stamp.touch()
        print(f"  written in {seconds:.1f} s")
        time.sleep(coco.SETTLE_SECONDS)  # the cache keeps only datasets that have not changed for a moment
    have_baseline = ensure_pycocotools()
    pairs = annotation_files(root)
    json_mb = sum(os.path.getsize(path) for path, _ in pairs) / 1e6
    print(
        f"{len(pairs)} annotation files, {json_mb:,.0f} MB of json; {args.workers} processes; CPUs: {os.cpu_count()}\n",
        flush=True,
    )

    floor(pairs[:3], "json", args.workers)  # warm the page cache and the pool start-up path
    results = {}
    for name in ("orjson", "json"):
        try:
            results[f"floor ({name} + stat)"] = floor(pairs, name, args.workers)
        except ImportError:
            print(f"{name} is not installed; its floor is skipped")
    results["data.validate cold"], reports = timed(
        coco.validate_root, "rf100vl", root, workers=args.workers, use_cache=False
    )
    results["data.validate cached"], cached = timed(coco.validate_root, "rf100vl", root, workers=args.workers)
    if have_baseline:
        results["baseline (pycocotools + exists)"] = baseline(pairs)

    errors = sum(len(r.errors) for r in reports)
    hits = sum(r.cached for r in cached)
    for label, seconds in results.items():
        print(f"{label:34s} {seconds:8.2f} s")
    print(f"\nvalidator found {errors} error kinds (expected 0); cache hits on the second run: {hits}/{len(cached)}")
    cold = results["data.validate cold"]
    floors = [v for k, v in results.items() if k.startswith("floor")]
    best_floor = min(floors)
    print(f"cold / fastest floor:   {cold / best_floor:5.2f}x   (goal <= 1.5x)")
    if "floor (json + stat)" in results:
        print(f"cold / json floor:      {cold / results['floor (json + stat)']:5.2f}x")
    if have_baseline:
        print(f"baseline / cold:        {results['baseline (pycocotools + exists)'] / cold:5.2f}x   (goal >= 5x)")
    print(f"cached:                 {results['data.validate cached']:5.3f} s  (goal < 0.5 s)")
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
