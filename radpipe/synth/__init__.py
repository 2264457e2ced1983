"""A synthetic DICOM + report archive whose pixels and reports agree on the findings."""

from radpipe.synth.archive import SynthSummary, write_archive

__all__ = ["SynthSummary", "write_archive"]
