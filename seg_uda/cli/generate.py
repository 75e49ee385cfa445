"""Generate the SynthCity synthetic ("game", GTA5 layout) -> real ("real", Cityscapes layout) benchmark."""
from __future__ import annotations

import argparse
import json
import os
import sys


from seg_uda.data.synthcity import generate_synthcity, parse_size


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--source-size", default="640x360", help="game frame size WIDTHxHEIGHT (default 640x360)")
    p.add_argument("--target-size", default="512x256", help="real frame size WIDTHxHEIGHT (default 512x256)")
    p.add_argument("--num-source", type=int, default=2500)
    p.add_argument("--num-target-train", type=int, default=2000)
    p.add_argument("--num-target-val", type=int, default=500)
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: os.cpu_count())")
    p.add_argument("--preview", default=None, help="also write a preview grid PNG here")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    try:
        src, tgt = parse_size(a.source_size, "--source-size"), parse_size(a.target_size, "--target-size")
        res = generate_synthcity(a.out, seed=a.seed, source_size=src, target_size=tgt, num_source=a.num_source,
                                 num_target_train=a.num_target_train, num_target_val=a.num_target_val,
                                 workers=a.workers, preview=a.preview, progress=not a.quiet)
    except (ValueError, OSError) as e:
        p.error(str(e))
    if not a.quiet:
        counts = res["counts"]
        print(f"SynthCity written to {res['out_dir']} in {res['elapsed_s']}s "
              f"(workers={a.workers or os.cpu_count()}): {json.dumps(counts)}")
        if a.preview:
            print(f"preview: {a.preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
