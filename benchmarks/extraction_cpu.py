"""Process CPU time per extraction at default settings, on the real frames and bench_extraction's.

A developer tool, not a benchmark (run.py does not collect it): the median
``time.process_time`` of ``-n`` calls of ``extract_centroids`` (building the
centroid list included) on the two real 1024x768 TIFFs of the tests, on the first
of them as an 8-bit camera gives it (black clipped) and that saved as a JPEG, on
bench_extraction's 1024x768 uint16 frame and (``--tess``) on its 2048x2048
TESS-like frame with the seed notebook's parameters. CPU time, unlike wall time,
is barely inflated by other processes on a shared machine. ``--peer`` times
tetra3rs on the same frames, call for call in turn (it uses every core by
default, so its CPU time counts all of its threads)::

    .venv/bin/python benchmarks/extraction_cpu.py [-n 20] [--tess] [--peer]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _frames(tess: bool) -> dict:
    import bench_extraction

    from skysolve.io.images import read_image
    from skysolve.tests import realframes
    from skysolve.tests.frames import tess_like_frame

    frames = {name[:33]: (read_image(realframes.DATA / name), {})
              for name in (realframes.ALT40, realframes.ALT60)}
    eight = _eight_bit(frames[realframes.ALT40[:33]][0])
    frames["ALT40 8-bit, black clipped (1 %)"] = (eight, {})
    frames["ALT40 8-bit, black clipped, JPEG 90"] = (_jpeg(eight, 90), {})
    frames["bench_extraction 1024x768 uint16"] = (bench_extraction._star_tracker_frame()[0], {})
    if tess:
        frames["bench_extraction 2048x2048 TESS"] = (tess_like_frame(seed=1)[0],
                                                      bench_extraction.SEED)
    return frames


def _eight_bit(counts):
    """A 16-bit frame as an 8-bit camera or a quick stretch gives it: linear from its 1st
    to its 99.99th percentile, so the 1 % of pixels below its black point sit at 0."""
    import numpy as np

    lo, hi = np.percentile(counts, [1.0, 99.99])
    return np.clip((counts - lo) / (hi - lo) * 255.0, 0.0, 255.0).astype(np.uint8)


def _jpeg(image, quality: int):
    """``image`` saved as a JPEG at ``quality`` and read back."""
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())))


def _cpu(fn) -> float:
    gc.collect()
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="calls per frame (median)")
    parser.add_argument("--tess", action="store_true", help="also the 2048x2048 frame")
    parser.add_argument("--peer", action="store_true", help="also tetra3rs, in turn")
    args = parser.parse_args(argv)

    import skysolve
    from skysolve.extraction.kernels import warm_up

    warm_up()  # the kernels in numba's cache, as an installation has them
    libs = {"skysolve": skysolve}
    if args.peer:
        import tetra3rs

        libs["tetra3rs"] = tetra3rs
    for name, (img, kwargs) in _frames(args.tess).items():
        calls = {lib: (lambda m=m, img=img, kw=kwargs: m.extract_centroids(img, **kw).centroids)
                 for lib, m in libs.items()}
        for call in calls.values():  # lazy imports, caches
            call()
        times: dict[str, list[float]] = {lib: [] for lib in calls}
        for _ in range(args.n):
            for lib, call in calls.items():
                times[lib].append(_cpu(call))
        med = {lib: 1e3 * statistics.median(t) for lib, t in times.items()}
        line = f"{name:34s} " + "  ".join(f"{lib} {ms:7.2f} ms" for lib, ms in med.items())
        if args.peer:
            line += f"  ratio {med['skysolve'] / med['tetra3rs']:.2f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
