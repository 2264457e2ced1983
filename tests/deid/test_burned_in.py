import pytest
from pydicom.dataset import Dataset

from radpipe.deid.burned_in import burned_in_reason


def _ds(modality: str, flag: str | None = None, sop_class: str = "1.2.840.10008.5.1.4.1.1.1") -> Dataset:
    ds = Dataset()
    ds.Modality, ds.SOPClassUID = modality, sop_class
    if flag is not None:
        ds.BurnedInAnnotation = flag
    return ds


@pytest.mark.parametrize(
    ("ds", "expected"),
    [
        (_ds("DX"), None),
        (_ds("DX", "YES"), "burned_in_annotation"),
        (_ds("US"), "burned_in_risk"),
        (_ds("US", "NO"), None),
        (_ds("OT"), "burned_in_risk"),
        (_ds("SC"), "burned_in_risk"),
        (_ds("CR", sop_class="1.2.840.10008.5.1.4.1.1.7"), "burned_in_risk"),  # a secondary capture
        (_ds("CR", "NO", sop_class="1.2.840.10008.5.1.4.1.1.7"), None),
    ],
)
def test_policy_fails_closed(ds: Dataset, expected: str | None) -> None:
    assert burned_in_reason(ds) == expected


def test_operators_can_allow_a_modality_they_have_checked() -> None:
    assert burned_in_reason(_ds("US"), frozenset({"US"})) is None
    assert burned_in_reason(_ds("DX", "YES"), frozenset({"ALL"})) is None
    assert burned_in_reason(_ds("OT"), frozenset({"US"})) == "burned_in_risk"
