"""User mistakes give one clear line and a non-zero exit, never a traceback."""

import subprocess
import sys
from pathlib import Path

import pytest


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "radpipe.cli", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ingest", "--dicom", "/nonexistent/archive", "--out", "/tmp/x"), "source does not exist"),
        (("ingest", "--out", "/tmp/x"), "nothing to ingest"),
        (("ingest", "--dicom", ".", "--out", "/tmp/x", "--profile", "bogus"), "unknown profile"),
        (("summary", "/nonexistent/dataset"), "dataset not found"),
        (("synth", "/tmp/radpipe-never", "--studies", "0"), "at least 1"),
    ],
)
def test_bad_input_is_one_line(args: tuple[str, ...], message: str) -> None:
    result = _run(*args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1, result.stderr


def test_pseudonym_reads_stdin_and_matches_arguments(tmp_path: Path) -> None:
    by_arg = _run("pseudonym", "--kind", "patient_id", "MRN1", "MRN2").stdout.split()
    by_stdin = subprocess.run(
        [sys.executable, "-m", "radpipe.cli", "pseudonym", "--kind", "patient_id"],
        input="MRN1\nMRN2\n",
        capture_output=True,
        text=True,
    ).stdout.split()
    assert by_arg == by_stdin and len(set(by_arg)) == 2
