"""The `radpipe` command line (CONTRACT.md, "Command line"). User mistakes exit with one line.

One module per group of subcommands, each with the functions that add its parsers: data.py (archives and
datasets), models.py (models and the chain), benchmarks.py; console.py holds the terminals and progress bar.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from radpipe.cli.benchmarks import add_bench_command
from radpipe.cli.console import console
from radpipe.cli.data import add_dataset_tools, add_ingest_commands
from radpipe.cli.models import add_chain_commands, add_model_commands
from radpipe.errors import RadpipeError

DESCRIPTION = 'The `radpipe` command line (CONTRACT.md, "Command line"). User mistakes exit with one line.'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="radpipe", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)
    add_ingest_commands(sub)
    add_model_commands(sub)
    add_chain_commands(sub)
    add_dataset_tools(sub)
    add_bench_command(sub)
    return parser


def entry() -> NoReturn:
    """The `radpipe` command: `main()`, then exit without tearing the interpreter down.

    Native libraries (Arrow's thread pool, delta-rs's runtime) may still hold threads that call into Python
    while the interpreter finalizes, and one that does aborts the process after the command has succeeded
    ("terminate called without an active exception", apache/arrow#34314): 1 of 30 `radpipe summary` runs in a
    loaded `make test` after every read had left Arrow's pool. Exit handlers (logging, Ray, MLflow, Prefect)
    still run, as on a normal exit; only the teardown after them is skipped.
    """
    # MLflow's artifact download bars (one per evaluation read) would fill the terminal of a pipeline run.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    code = main()
    try:
        atexit._run_exitfuncs()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except RadpipeError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        return 1
    except KeyboardInterrupt:
        console.print("interrupted; rerun the same command to finish (committed work is kept)")
        return 130
