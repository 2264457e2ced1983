"""`radpipe generate`: reports for DICOM files (a radiograph each) or series folders (a CT/MR volume each)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from radpipe.errors import ConfigError, SourceError
from radpipe.model.generate import GenerationConfig
from radpipe.model.report_text import Sections
from radpipe.settings import Settings


@dataclass(frozen=True)
class WrittenReport:
    source: str  # the path as given
    sections: Sections


def generate_reports(
    model_uri: str, paths: Sequence[str], cfg: GenerationConfig, settings: Settings
) -> tuple[str, list[WrittenReport]]:
    """(the pinned model URI, one written report per path), in the order given."""
    from radpipe import tracking
    from radpipe.model.registered import load_registered_embedder

    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise SourceError(f"no such file or folder: {missing[0]}")
    tracking.configure(settings)
    ref = tracking.resolve_model(model_uri)
    embedder = load_registered_embedder(ref.pinned)
    if embedder.writer is None:
        raise ConfigError(
            f"{ref.pinned} writes no reports (objective {embedder.spec.model.objective}); "
            "train with model.objective coca or captioning"
        )
    inputs = []
    for given in paths:
        path = Path(given)
        try:
            if path.is_dir():
                files = sorted(f for f in path.rglob("*") if f.is_file())
                inputs.append(embedder.series_input([f.read_bytes() for f in files]))
            else:
                inputs.append(embedder.dicom_input(path.read_bytes()))
        except (ValueError, OSError) as exc:
            kind = "series folder" if path.is_dir() else "DICOM file"
            raise SourceError(f"{given}: not a {kind} this model reads ({type(exc).__name__}: {exc})") from None
    written = embedder.writer.write(inputs, cfg)
    return ref.pinned, [WrittenReport(p, s) for p, s in zip(paths, written, strict=True)]
