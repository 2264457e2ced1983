"""`radpipe bench`: radpipe ingest beside a naive one-process loop and the decode-only floor.

Each contender runs in its own process tree on the same fixed corpus, in the same run; we report
files/s, MB/s, peak RSS (whole process tree) and the two ratios. Never a timed assertion in tests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

CORPUS_SEED = 2024


@dataclass
class Measurement:
    name: str
    seconds: float
    files: int
    megabytes: float
    peak_rss_mb: float

    @property
    def files_per_s(self) -> float:
        return self.files / self.seconds

    @property
    def mb_per_s(self) -> float:
        return self.megabytes / self.seconds


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _measure(name: str, command: list[str], files: int, megabytes: float, env: dict[str, str]) -> Measurement:
    peak = [0]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    watched = psutil.Process(child.pid)

    def sample() -> None:
        while child.poll() is None:
            try:
                peak[0] = max(peak[0], _tree_rss(watched))
            except psutil.Error:
                pass
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = child.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    if child.returncode != 0:
        raise RuntimeError(f"bench stage {name} failed: {err[-1500:]}")
    return Measurement(name, seconds, files, megabytes, peak[0] / 1e6)


def _corpus(out: Path, studies: int) -> Path:
    from radpipe.synth import write_archive

    corpus = out / f"corpus-{studies}-{CORPUS_SEED}"
    if not (corpus / ".complete").exists():
        import shutil

        shutil.rmtree(corpus, ignore_errors=True)
        write_archive(corpus, studies=studies, seed=CORPUS_SEED)
        (corpus / ".complete").touch()
    return corpus


def run_bench(out: Path, studies: int, console: Console, repeat: int = 3) -> dict[str, object]:
    """Measure the three contenders on one corpus; print and save the figures."""
    out.mkdir(parents=True, exist_ok=True)
    console.print(f"preparing the corpus ({studies} studies, seed {CORPUS_SEED}) ...")
    corpus = _corpus(out, studies)
    files = sorted(p for p in (corpus / "dicom").rglob("*.dcm"))
    megabytes = sum(p.stat().st_size for p in files) / 1e6
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    # Rounds interleave the contenders, so a noisy minute on a shared machine hits all of them alike;
    # each figure is the median over the rounds.
    contenders = _contenders(corpus, out)
    runs: dict[str, list[Measurement]] = {name: [] for name, _ in contenders}
    for round_number in range(1, repeat + 1):
        for name, command in contenders:
            if name.startswith("radpipe"):
                shutil.rmtree(out / "dataset", ignore_errors=True)
            console.print(f"round {round_number}/{repeat}: {name} ...")
            runs[name].append(_measure(name, command, len(files), megabytes, env))
    results = [sorted(measured, key=lambda m: m.seconds)[len(measured) // 2] for measured in runs.values()]
    console.print(_results_table(results, runs, len(files), megabytes))
    floor, naive, ingest = results
    ratios = {"ingest_over_naive": ingest.seconds / naive.seconds, "ingest_over_floor": ingest.seconds / floor.seconds}
    per_round = [(i.seconds / n.seconds, i.seconds / f.seconds) for f, n, i in zip(*runs.values(), strict=True)]
    console.print(
        f"ingest / naive = {ratios['ingest_over_naive']:.2f} (target <= 0.5); "
        f"ingest / floor = {ratios['ingest_over_floor']:.2f} (target <= 1.2); medians of {repeat} rounds"
    )
    console.print("per round (naive, floor): " + ", ".join(f"{a:.2f}, {b:.2f}" for a, b in per_round))
    report: dict[str, object] = {
        "rounds": repeat,
        "per_round_ratios": per_round,
        "files": len(files),
        "megabytes": megabytes,
        "cores": os.cpu_count(),
        "results": [asdict(m) | {"files_per_s": m.files_per_s} for m in results],
        "ratios": ratios,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2))
    return report


def _contenders(corpus: Path, out: Path) -> list[tuple[str, list[str]]]:
    """The decode-only floor, the naive one-process loop, and radpipe ingest: each a command."""
    python = sys.executable
    ingest = ["--dicom", str(corpus / "dicom"), "--reports", str(corpus / "reports"), "--out", str(out / "dataset")]
    return [
        ("decode floor (all cores)", [python, "-m", "radpipe.bench.ingest", "floor", str(corpus)]),
        (
            "naive loop (1 process)",
            [python, "-m", "radpipe.bench.ingest", "naive", str(corpus), str(out / "naive.parquet")],
        ),
        ("radpipe ingest (Dask)", [python, "-m", "radpipe.cli", "ingest", *ingest]),
    ]


def _results_table(
    results: list[Measurement], runs: dict[str, list[Measurement]], files: int, megabytes: float
) -> Table:
    table = Table(title=f"ingest benchmark: {files} files, {megabytes:.0f} MB, {os.cpu_count()} cores")
    for column in ("contender", "seconds (median)", "range", "files/s", "MB/s", "peak RSS MB"):
        table.add_column(column, justify="right" if column != "contender" else "left")
    for m in results:
        low, high = min(r.seconds for r in runs[m.name]), max(r.seconds for r in runs[m.name])
        table.add_row(
            m.name,
            f"{m.seconds:.1f}",
            f"{low:.1f}-{high:.1f}",
            f"{m.files_per_s:.1f}",
            f"{m.mb_per_s:.1f}",
            f"{m.peak_rss_mb:.0f}",
        )
    return table


def _decode_only(path: str) -> int:
    import pydicom

    from radpipe.dicom.pixels import decode_pixels

    stored, _ = decode_pixels(pydicom.dcmread(path))
    return int(stored.size)


def _floor(corpus: Path) -> None:
    files = [str(p) for p in sorted((corpus / "dicom").rglob("*.dcm"))]
    with Pool(os.cpu_count() or 1) as pool:
        sum(pool.imap_unordered(_decode_only, files, chunksize=8))


def _naive(corpus: Path, target: Path) -> None:
    """What a first script looks like: read, decode, keep everything, one DataFrame, one Parquet file."""
    import pandas as pd
    import pydicom

    rows = []
    for path in sorted((corpus / "dicom").rglob("*.dcm")):
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        rows.append(
            {
                "sop_instance_uid": str(ds.SOPInstanceUID),
                "study_instance_uid": str(ds.StudyInstanceUID),
                "patient_id": str(ds.PatientID),
                "modality": str(ds.Modality),
                "rows": int(ds.Rows),
                "columns": int(ds.Columns),
                "pixels": pixels.tobytes(),
                "dtype": pixels.dtype.str,
            }
        )
    pd.DataFrame(rows).to_parquet(target)


if __name__ == "__main__":
    stage, corpus_arg = sys.argv[1], Path(sys.argv[2])
    if stage == "floor":
        _floor(corpus_arg)
    elif stage == "naive":
        _naive(corpus_arg, Path(sys.argv[3]))
    else:
        raise SystemExit(f"unknown bench stage {stage}")
