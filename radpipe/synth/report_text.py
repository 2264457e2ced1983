"""Write a radiology report consistent with a study's finding vector."""

from __future__ import annotations

import numpy as np

from radpipe.synth.findings import Findings, State

SIDE = ("right", "left")  # image left is the patient's right

# finding -> state -> phrasings; "{side}" is the patient's side of the finding.
PHRASES: dict[str, dict[State, tuple[str, ...]]] = {
    "cardiomegaly": {
        State.PRESENT: (
            "The heart is enlarged.",
            "Cardiomegaly.",
            "Moderate cardiomegaly.",
            "Enlarged cardiac silhouette.",
        ),
        State.UNCERTAIN: ("Borderline cardiomegaly.", "Possible mild cardiomegaly."),
        State.ABSENT: ("Heart size is normal.", "No cardiomegaly.", "Normal heart size."),
    },
    "pleural_effusion": {
        State.PRESENT: (
            "Small {side} pleural effusion.",
            "Moderate {side} pleural effusion.",
            "Blunting of the {side} costophrenic angle consistent with pleural effusion.",
        ),
        State.UNCERTAIN: (
            "Possible small {side} pleural effusion.",
            "Small {side} effusion cannot be excluded.",
        ),
        State.ABSENT: ("No pleural effusion.", "No pleural effusions.", "Costophrenic angles are sharp."),
    },
    "pneumothorax": {
        State.PRESENT: (
            "Small {side} apical pneumothorax.",
            "There is a {side} pneumothorax.",
            "{Side} pneumothorax with visible pleural line.",
        ),
        State.UNCERTAIN: ("Possible tiny {side} apical pneumothorax.", "Questionable {side} pneumothorax."),
        State.ABSENT: ("No pneumothorax.", "No evidence of pneumothorax."),
    },
    "lung_lesion": {
        State.PRESENT: (
            "A 2 cm nodule in the {side} lung.",
            "{Side} lung mass.",
            "Rounded nodular density in the {side} lung.",
        ),
        State.UNCERTAIN: ("Possible nodule in the {side} mid lung.", "Questionable {side} lung nodule."),
        State.ABSENT: ("No focal nodule or mass.", "No suspicious pulmonary nodule."),
    },
    "consolidation": {
        State.PRESENT: (
            "Patchy opacity in the {side} lower lung consistent with consolidation.",
            "{Side} basilar consolidation.",
            "Airspace consolidation in the {side} lung.",
        ),
        State.UNCERTAIN: (
            "Possible early consolidation at the {side} base.",
            "Subtle {side} basilar consolidation is not excluded.",
        ),
        State.ABSENT: ("No focal consolidation.", "No consolidation."),
    },
    "support_devices": {
        State.PRESENT: (
            "Endotracheal tube tip 4 cm above the carina.",
            "Right internal jugular central venous catheter with tip in the SVC.",
            "Enteric tube courses below the diaphragm.",
        ),
        State.ABSENT: (),
    },
}

IMPRESSION_NAMES = {
    "cardiomegaly": "cardiomegaly",
    "pleural_effusion": "{side} pleural effusion",
    "pneumothorax": "{side} pneumothorax",
    "lung_lesion": "{side} lung nodule",
    "consolidation": "{side} consolidation",
}
INDICATIONS = (
    "Shortness of breath.",
    "Cough and fever.",
    "Chest pain.",
    "Follow-up.",
    "Pre-operative evaluation.",
    "Hypoxia.",
    "Evaluate for pneumonia.",
)
RATIONALE = {
    "cardiomegaly": "The cardiac silhouette spans more than half the thoracic width, so the heart is enlarged.",
    "pleural_effusion": "The {side} costophrenic angle is blunted with a meniscus, which indicates pleural fluid.",
    "pneumothorax": "A lucent rim without lung markings lies lateral to a pleural line, so there is a pneumothorax.",
    "lung_lesion": "A rounded density stands out from the vessels, so a nodule is reported.",
    "consolidation": "Patchy airspace density without volume loss favours consolidation.",
    "support_devices": "A thin radiodense line projects over the mediastinum: a support device.",
}


def _fill(template: str, side: int) -> str:
    return template.format(side=SIDE[side], Side=SIDE[side].capitalize())


def write_report(rng: np.random.Generator, findings: Findings) -> tuple[str, str | None]:
    """(report text, rationale or None) for one study."""
    sentences = []
    for name, by_state in PHRASES.items():
        state = findings.states[name]
        options = by_state.get(state, ())
        # Negatives are often left unsaid; positives and hedges always appear.
        if not options or (state is State.ABSENT and rng.random() < 0.35):
            continue
        sentences.append(_fill(options[int(rng.integers(len(options)))], findings.sides[name]))
    order = rng.permutation(len(sentences))
    findings_text = " ".join(sentences[i] for i in order)
    positives = [_fill(IMPRESSION_NAMES[n], findings.sides[n]) for n in IMPRESSION_NAMES if findings.present(n)]
    if positives:
        impression = (", ".join(positives)).capitalize() + "."
    elif any(findings.states[n] is State.UNCERTAIN for n in IMPRESSION_NAMES):
        impression = "Findings as above, clinical correlation advised."
    else:
        impression = "No acute cardiopulmonary process."
    indication = INDICATIONS[int(rng.integers(len(INDICATIONS)))]
    if rng.random() < 0.05:
        indication = ""  # a few reports carry an empty section
    if rng.random() < 0.03:
        findings_text = ""
    text = f"INDICATION: {indication}\nFINDINGS: {findings_text}\nIMPRESSION: {impression}"
    rationale = None
    shown = [n for n in RATIONALE if findings.present(n)]
    # The radiologist argues every positive read (CheXOne's traces explain findings); a normal one sometimes.
    if rng.random() < 0.3 or shown:
        steps = [_fill(RATIONALE[n], findings.sides[n]) for n in shown] or [
            "Lungs are expanded and clear, the heart is normal in size and the angles are sharp."
        ]
        rationale = " ".join(steps)
    return text, rationale
