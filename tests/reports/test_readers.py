import io

from radpipe.reports.readers import read_reports
from radpipe.reports.record import BadReport, ReportRecord
from radpipe.reports.sections import split_sections

OPENI = b"""<?xml version="1.0" encoding="utf-8"?>
<eCitation>
  <uId id="CXR1000"/>
  <MedlineCitation><Article><Abstract>
    <AbstractText Label="COMPARISON">None.</AbstractText>
    <AbstractText Label="INDICATION">Cough.</AbstractText>
    <AbstractText Label="FINDINGS">The heart is normal in size. No pleural effusion.</AbstractText>
    <AbstractText Label="IMPRESSION">No acute cardiopulmonary process.</AbstractText>
  </Abstract></Article></MedlineCitation>
  <parentImage id="CXR1000_IM-0003-1001"/>
</eCitation>
"""


def _read(name: str, data: bytes) -> list[ReportRecord | BadReport]:
    return list(read_reports(name, io.BytesIO(data)))


def test_jsonl_good_and_broken_lines_are_all_accounted_for() -> None:
    data = (
        b'{"accession_number": "A1", "text": "FINDINGS: No effusion."}\n'
        b'{"accession_number": "A2", "text": \n'
        b'{"accession_number": "A3", "text": "   "}\n'
        b'{"text": "FINDINGS: orphan"}\n'
        b"\n"
        b'["not", "an", "object"]\n'
        b'{"study_instance_uid": "1.2.3", "text": "IMPRESSION: normal", "rationale": "clear lungs"}\n'
    )
    items = _read("r.jsonl", data)
    reasons = [item.reason if isinstance(item, BadReport) else "ok" for item in items]
    assert reasons == ["ok", "parse_error", "missing_text", "missing_key", "parse_error", "ok"]
    assert items[-1].rationale == "clear lungs"  # type: ignore[union-attr]
    assert [i.position for i in items] == [1, 2, 3, 4, 6, 7]


def test_csv_reader_handles_quotes_and_ragged_rows() -> None:
    data = (
        b"accession_number,study_instance_uid,text,report_date\n"
        b'A1,,"FINDINGS: No effusion, no pneumothorax.\nIMPRESSION: Normal.",2020-01-02\n'
        b"A2,,short\n"
        b"A3,,text,2020-01-01,extra\n"
    )
    items = _read("reports.CSV", data)
    assert isinstance(items[0], ReportRecord) and "no pneumothorax" in items[0].text
    assert items[0].report_date == "2020-01-02"
    assert [getattr(i, "reason", "ok") for i in items] == ["ok", "parse_error", "parse_error"]


def test_openi_xml_uses_uid_as_accession_and_keeps_sections() -> None:
    (record,) = _read("1000.xml", OPENI)
    assert isinstance(record, ReportRecord)
    assert record.accession_number == "CXR1000"
    sections = split_sections(record.text)
    assert sections["findings"] == "The heart is normal in size. No pleural effusion."
    assert sections["impression"] == "No acute cardiopulmonary process."
    assert sections["indication"] == "Cough."


def test_broken_xml_and_unknown_formats_are_quarantined() -> None:
    assert _read("x.xml", b"<eCitation><uId id='1'>")[0].reason == "parse_error"  # type: ignore[union-attr]
    assert _read("x.pdf", b"%PDF")[0].reason == "unsupported_format"  # type: ignore[union-attr]


def test_sections_split_inline_and_keep_empty_sections() -> None:
    text = "INDICATION: \nFINDINGS: Cardiomegaly. IMPRESSION: Enlarged heart."
    assert split_sections(text) == {
        "indication": "",
        "findings": "Cardiomegaly.",
        "impression": "Enlarged heart.",
    }
    assert split_sections("No headings at all.") == {"preamble": "No headings at all."}


def test_excel_bom_and_windows_encodings_are_read() -> None:
    bom = "\ufeffaccession_number,text\nA1,IMPRESSION: Normal.\n".encode()
    (record,) = _read("excel.csv", bom)
    assert isinstance(record, ReportRecord) and record.accession_number == "A1"
    latin = "accession_number,text\nA2,FINDINGS: Läsion im Oberlappen.\n".encode("cp1252")
    (record,) = _read("legacy.csv", latin)
    assert isinstance(record, ReportRecord) and "Läsion" in record.text


def test_a_broken_csv_line_does_not_lose_the_lines_after_it(monkeypatch) -> None:
    from radpipe.reports import readers

    monkeypatch.setattr(readers, "MAX_CSV_FIELD", 100)  # a field over the limit is a csv.Error
    data = b'accession_number,text\nA1,"ok one"\nA2,"' + b"x" * 300 + b'"\nA3,"ok two"\n'
    items = _read("r.csv", data)
    assert [getattr(i, "accession_number", None) or i.reason for i in items] == ["A1", "parse_error", "A3"]


def test_absurd_json_is_a_parse_error_not_a_crash() -> None:
    data = b'{"accession_number": 1' + b"1" * 5000 + b', "text": "x"}\n' + b"[" * 100000 + b"\n"
    items = _read("r.jsonl", data)
    assert [i.reason for i in items] == ["parse_error", "parse_error"]  # type: ignore[union-attr]


def test_headings_in_capitals_are_found_mid_line() -> None:
    text = "EXAMINATION: CHEST PA AND LAT INDICATION: eval for pneumonia FINDINGS: No effusion."
    sections = split_sections(text)
    assert sections["indication"] == "eval for pneumonia" and sections["findings"] == "No effusion."
    assert "preamble" not in sections
