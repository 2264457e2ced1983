"""`radpipe bench`: the benchmark suites, each against its baseline in the same run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from radpipe.cli.console import out


def cmd_bench(args: argparse.Namespace) -> int:
    if args.suite in ("all", "ingest"):
        from radpipe.bench.ingest import run_bench

        run_bench(Path(args.out), studies=args.studies, console=out, repeat=args.repeat)
    if args.suite in ("all", "train"):
        from radpipe.bench.train import run_train_bench

        run_train_bench(Path(args.out), console=out, repeat=args.train_repeat)
    if args.suite in ("all", "volume-memory"):
        from radpipe.bench.volume import run_volume_memory_bench

        run_volume_memory_bench(Path(args.out), console=out)
    if args.suite in ("all", "scale"):
        from radpipe.bench.scale import SIZES, run_scale_bench

        run_scale_bench(Path(args.out), console=out, sizes=tuple(args.scale_sizes or SIZES))
    if args.suite in ("all", "deid"):
        from radpipe.bench.deid import run_deid_bench

        run_deid_bench(Path(args.out), console=out)
    if args.suite in ("all", "prune"):
        from radpipe.bench.prune import run_prune_bench

        run_prune_bench(Path(args.out), console=out, studies=args.prune_studies)
    return 0


def add_bench_command(sub: Any) -> None:
    """bench: every suite, or one."""
    bench = sub.add_parser(
        "bench",
        help="benchmarks: ingest vs a naive loop and the decode floor; Ray Train vs plain PyTorch; "
        "full data vs a SemDeDup-pruned third vs a random third",
    )
    bench.add_argument("--out", default="bench-out")
    bench.add_argument(
        "--suite", choices=["all", "ingest", "train", "prune", "volume-memory", "deid", "scale"], default="all"
    )
    bench.add_argument(
        "--scale-sizes", type=int, nargs="+", metavar="FILES", help="dataset sizes of the scale suite (10000 100000)"
    )
    bench.add_argument("--prune-studies", type=int, default=1000, help="corpus size of the data-efficiency suite")
    bench.add_argument("--train-repeat", type=int, default=2, help="rounds of the training benchmark")
    bench.add_argument("--studies", type=int, default=2400, help="corpus size (cached under --out)")
    bench.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians")
    bench.set_defaults(func=cmd_bench)
