"""`radpipe bench --suite scale`: what an ingest costs the driver as the dataset grows.

Issue 14's goal is a driver whose cost follows the new data: a rerun that finds nothing new, and a run that
adds 1,000 files, should cost the same at 10^6 files as at 10^4 (within 1.5x), with flat driver memory.
This bench measures where radpipe stands. Per size it builds a dataset of synthetic ledger and instances
rows (batches of 1,000, identifier-store entries for each, no pixels: only the driver's bookkeeping is
measured), then runs, each in a fresh process whose peak RSS is taken:

* a rerun that finds nothing new (`--manifest` with no entry: listing excepted, it is measured apart), after
  one such run has derived studies/ as the ingest that wrote the rows would have,
* a run that adds 1,000 real DICOM files (`radpipe synth`, the same files at every size),
* the PHI gate: the first over every row (before the rerun), the one after the 1,000 new files (their rows,
  and the earlier files their identifiers could be in), then one with nothing new,

once on the dataset as ingest leaves it (a file per table per batch) and once after `radpipe optimize`
compacted it (the weekly deployment's job), each on its own copy of the same built dataset.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from radpipe.dataset import delta
from radpipe.dataset.guard import check_key
from radpipe.dataset.schema import TABLES
from radpipe.dataset.store import DatasetStore
from radpipe.deid.identifier_store import IdentifierStore

SIZES = (10_000, 100_000)
BATCH = 1_000
BENCH_KEY = "bench-scale-key-0123456789abcdef-not-secret"


def build_dataset(root: Path, files: int, home: Path) -> None:
    """A dataset whose ledger and instances hold `files` synthetic rows, with identifier entries for each batch."""
    root.mkdir(parents=True, exist_ok=True)
    store = DatasetStore(str(root))
    dataset_id = check_key(store, BENCH_KEY.encode())
    identifiers = IdentifierStore(home, dataset_id)
    rng = random.Random(files)
    committed = set()
    for number, start in enumerate(range(0, files, BATCH)):
        batch_id = f"bench-{number:06d}"
        count = min(BATCH, files - start)
        keys = [f"{rng.getrandbits(128):032x}" for _ in range(count)]
        ledger = [
            {
                "source_key": key,
                "kind": "dicom",
                "size": 40_000,
                "mtime": "1700000000.0",
                "outcome": "ingested",
                "records": 0,
                "batch_id": batch_id,
                "committed_at": "2026-01-01T00:00:00+00:00",
            }
            for key in keys
        ]
        instances = [
            {
                "sop_instance_uid": f"2.25.{rng.getrandbits(96)}",
                "series_instance_uid": f"2.25.{rng.getrandbits(96)}",
                "study_instance_uid": f"2.25.{rng.getrandbits(96)}",
                "patient_id": f"{rng.getrandbits(64):016x}",
                "accession_number": f"{rng.getrandbits(64):016x}",
                "modality": "CR",
                "source_key": key,
                "batch_id": batch_id,
            }
            for key in keys
        ]
        for table, rows in (("instances", instances), ("_ledger", ledger)):  # one Delta commit per batch, as ingest
            folder = root / table
            folder.mkdir(parents=True, exist_ok=True)
            name = f"part-{batch_id}.parquet"
            pq.write_table(pa.Table.from_pylist(rows, schema=TABLES[table]), folder / name)
            added = delta.DataFile(name, (folder / name).stat().st_size, len(rows))
            delta.commit(store.table_uri(table), TABLES[table], batch_id, [added])
        identifiers.add_batch(batch_id, {f"{rng.getrandbits(80):020x}": "patient id" for _ in range(count)})
        committed.add(batch_id)
    identifiers.merge_batches(committed, "bench")


def _measure(step: str, dataset: Path, source: Path, manifest: Path, home: Path) -> dict[str, float]:
    """Run one step in a fresh process; its wall time and peak RSS."""
    environment = {"RADPIPE_HOME": str(home), "RADPIPE_DEID_KEY": BENCH_KEY, "RADPIPE_DASK_WORKERS": "2"}
    command = [sys.executable, "-m", "radpipe.bench.scale", step, str(dataset), str(source), str(manifest)]
    started = time.perf_counter()
    done = subprocess.run(command, env={**os.environ, **environment}, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"bench step {step} failed: {done.stderr[-1500:]}")
    inner = json.loads(done.stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "inner_seconds": inner["seconds"], "rss_mb": inner["peak_rss_kb"] / 1024}


def _step(step: str, dataset: str, source: str, manifest: str) -> None:
    """In the measured process: the step itself (serial engine: the driver's own cost, no cluster start)."""
    from radpipe.commands import deidentifier, optimize, phi_gate
    from radpipe.engine import SerialEngine
    from radpipe.ingest.run import ingest
    from radpipe.preprocess import get_profile
    from radpipe.settings import get_settings

    started = time.perf_counter()
    if step == "gate":
        phi_gate(dataset)
    elif step == "optimize":
        optimize(dataset)
    else:
        ingest(
            source,
            None,
            dataset,
            deidentifier(),
            get_profile("cxr-224"),
            SerialEngine(),
            home=get_settings().home,
            dicom_manifest=manifest,
        )
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_rss_kb": _peak_rss_kb()}))


def _peak_rss_kb() -> int:
    """This process's peak resident memory. Linux keeps `ru_maxrss` across exec, so a child started by a large
    parent would report the parent's size; the high-water mark of its own address space (VmHWM) does not."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def run_scale_bench(out: Path, console: Console, sizes: tuple[int, ...] = SIZES) -> list[dict[str, Any]]:
    from radpipe.synth import write_archive

    out = out.resolve()  # the manifest lists absolute paths: relative ones are taken as relative to the source
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "scale-new-files"
    if not archive.exists():  # written aside and renamed: an interrupted run leaves no partial archive to reuse
        subprocess.run(["rm", "-rf", str(out / "scale-new-files.partial")], check=True)
        write_archive(out / "scale-new-files.partial", studies=900, seed=14)  # about 1.2 files a study
        (out / "scale-new-files.partial").rename(archive)
    new_files = sorted(p for p in (archive / "dicom").rglob("*") if p.is_file())[:1000]
    add_manifest, empty_manifest = out / "scale-add.txt", out / "scale-none.txt"
    add_manifest.write_text("".join(f"{p}\n" for p in new_files))
    empty_manifest.write_text("")
    results: list[dict[str, Any]] = []
    for size in sizes:
        built, built_home = out / f"scale-{size}-built", out / f"scale-{size}-built-home"
        for path in (built, built_home):
            subprocess.run(["rm", "-rf", str(path)], check=True)
        build_dataset(built, size, built_home)
        for layout in LAYOUTS:
            results.append(_measure_layout(out, size, layout, built, built_home, archive, add_manifest, empty_manifest))
            results[-1]["new_files"] = len(new_files)
    console.print(_scale_table(results, len(new_files)))
    for layout in LAYOUTS:
        rows = [row for row in results if row["layout"] == layout]
        if len(rows) > 1:
            first, last = rows[0], rows[-1]
            ratio = {
                k: last[k]["inner_seconds"] / max(first[k]["inner_seconds"], 1e-9)
                for k in ("rerun_nothing_new", "add_new_files", "gate_full", "gate", "gate_nothing_new")
            }
            console.print(
                f"{layout}: cost at {last['files']:,} files / at {first['files']:,} (goal <= 1.5): "
                f"rerun {ratio['rerun_nothing_new']:.1f}x, +{len(new_files)} files {ratio['add_new_files']:.1f}x, "
                f"gate after them {ratio['gate']:.1f}x, gate with nothing new {ratio['gate_nothing_new']:.1f}x "
                f"(first gate, every row: {ratio['gate_full']:.1f}x)"
            )
    (out / "scale.json").write_text(json.dumps(results, indent=2))
    return results


# As ingest leaves a dataset (a file per table per batch of 1,000), and after `radpipe optimize` compacted it.
LAYOUTS = ("as ingested", "optimized")


def _measure_layout(
    out: Path,
    size: int,
    layout: str,
    built: Path,
    built_home: Path,
    archive: Path,
    add_manifest: Path,
    empty_manifest: Path,
) -> dict[str, Any]:
    """The steps on a copy of the built dataset, in one layout."""
    suffix = "optimized" if layout == "optimized" else "ingested"
    root, home = out / f"scale-{size}-{suffix}", out / f"scale-{size}-{suffix}-home"
    for copy, original in ((root, built), (home, built_home)):
        subprocess.run(["rm", "-rf", str(copy)], check=True)
        subprocess.run(["cp", "-a", str(original), str(copy)], check=True)
    row: dict[str, Any] = {"files": size, "layout": layout}
    if layout == "optimized":
        row["optimize"] = _measure("optimize", root, archive / "dicom", empty_manifest, home)
    _measure("ingest", root, archive / "dicom", empty_manifest, home)  # derives studies/ once, as ingest would
    row["gate_full"] = _measure("gate", root, archive / "dicom", empty_manifest, home)  # the first: every row
    row["rerun_nothing_new"] = _measure("ingest", root, archive / "dicom", empty_manifest, home)
    row["add_new_files"] = _measure("ingest", root, archive / "dicom", add_manifest, home)
    row["gate"] = _measure("gate", root, archive / "dicom", empty_manifest, home)  # after the 1,000 new files
    row["gate_nothing_new"] = _measure("gate", root, archive / "dicom", empty_manifest, home)  # reads nothing
    return row


def _scale_table(results: list[dict[str, Any]], new_files: int) -> Table:
    table = Table(title="ingest driver cost as the dataset grows (serial engine, fresh process per step)")
    columns = (
        "dataset files",
        "layout",
        "rerun, nothing new (s)",
        "peak RSS MB",
        f"+{new_files} files (s)",
        "peak RSS MB ",
    )
    for column in (
        *columns,
        "first gate, every row (s)",
        f"gate after +{new_files} (s)",
        "peak RSS MB  ",
        "gate, nothing new (s)",
    ):
        table.add_column(column, justify="right")
    for row in results:
        table.add_row(
            f"{row['files']:,}",
            row["layout"],
            f"{row['rerun_nothing_new']['inner_seconds']:.2f}",
            f"{row['rerun_nothing_new']['rss_mb']:.0f}",
            f"{row['add_new_files']['inner_seconds']:.2f}",
            f"{row['add_new_files']['rss_mb']:.0f}",
            f"{row['gate_full']['inner_seconds']:.2f}",
            f"{row['gate']['inner_seconds']:.2f}",
            f"{row['gate']['rss_mb']:.0f}",
            f"{row['gate_nothing_new']['inner_seconds']:.2f}",
        )
    return table


if __name__ == "__main__":
    _step(*sys.argv[1:5])
