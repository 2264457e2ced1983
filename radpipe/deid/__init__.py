"""De-identification: keyed pseudonyms, header cleaning, report text (the one seam nothing bypasses)."""

from radpipe.deid.keys import load_key
from radpipe.deid.pseudonym import Pseudonymizer
from radpipe.deid.seam import Deidentifier

__all__ = ["Deidentifier", "Pseudonymizer", "load_key"]
