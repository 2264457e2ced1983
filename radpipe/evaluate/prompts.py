"""Zero-shot prompts as data: per label, a sentence that asserts the finding and one that denies it.

Written the way radiology reports phrase them (the model learnt from reports, not from captions).
Edit or extend freely; evaluation scores only labels that have a pair here.
"""

from __future__ import annotations

PROMPTS: dict[str, tuple[str, str]] = {
    "cardiomegaly": ("Moderate cardiomegaly.", "Heart size is normal."),
    "pleural_effusion": ("Moderate pleural effusion.", "No pleural effusion."),
    "pneumothorax": ("There is a pneumothorax.", "No pneumothorax."),
    "lung_lesion": ("Rounded nodular density in the lung.", "No focal nodule or mass."),
    "consolidation": ("Airspace consolidation in the lung.", "No focal consolidation."),
    "support_devices": ("Endotracheal tube tip above the carina.", "No lines or tubes."),
    "edema": ("Pulmonary edema.", "No pulmonary edema."),
    "atelectasis": ("Basilar atelectasis.", "No atelectasis."),
    "pneumonia": ("Findings consistent with pneumonia.", "No evidence of pneumonia."),
    "fracture": ("Acute rib fracture.", "No acute fracture."),
}
