"""Spanish labeller rules as data, written unaccented as word stems so that they match both raw reports
("derrame pleural", "neumotórax") and stemmed corpora such as PadChest's ("derram pleural", "neumotorax").

Measured against PadChest's physician labels (radpipe/reports/padchest.py; README): write rules on the
tuning half only.
"""

from __future__ import annotations

from radpipe.reports.label_rules import LabelRule, RuleSet


def _stems(*phrases: str) -> tuple[str, ...]:
    """Each word of each phrase as a stem: 'derram pleural' matches 'derrame pleural' and 'derrames pleurales'."""
    return tuple(r"\s+".join(word + r"\w*" for word in phrase.split()) for phrase in phrases)


RULES: tuple[LabelRule, ...] = (
    LabelRule(
        "enlarged_cardiomediastinum",
        _stems("ensanch mediastin", "mediastin ensanch", "ensanch del mediastin", "aument mediastin"),
    ),
    LabelRule(
        "cardiomegaly",
        _stems(
            "cardiomegali",
            "aument de la siluet cardi",
            "aument siluet cardi",
            "siluet cardi aument",
            "aument del ict",
            "aument ict",
            "ict aument",
            "ict limit",
            "indic cardiotorac aument",
            "aument del indic cardiotorac",
            "indic cardiotorac limit",
            "siluet cardi limit alto",
            "siluet cardi en limit",
            "crecimient de cavidad",
            "crecimient cavidad",
        ),
    ),
    LabelRule(
        "lung_opacity",
        _stems(
            "infiltr",
            "opac",
            "aument de dens",
            "patron alveol",
            "patron intersticial",
            "patron reticul",
            "vidri deslustr",
            "condens",
        ),
    ),
    LabelRule(
        "lung_lesion",
        (r"(?<!pseudo)nodul(?!ill)\w*", *_stems("mas pulmonar", "masa", "lesion pulmonar", "tumor", "neoplas")),
    ),
    LabelRule("edema", _stems("edem")),
    LabelRule("consolidation", _stems("consolid")),
    LabelRule(
        "pneumonia",
        _stems("neumoni", "bronconeumoni", "infecci", "sobreinfeccion", "proces infecci", "etiologi infecci"),
    ),
    LabelRule("atelectasis", _stems("atelectasi", "colaps pulmonar", "colaps lobar")),
    LabelRule("pneumothorax", _stems("neumotorax", "hidroneumotorax")),
    LabelRule(
        "pleural_effusion",
        _stems(
            "derram pleural",
            "derram",
            "liquid pleural",
            "pinzamient del sen costofren",
            "pinzamient sen costofren",
            "pinzamient costofren",
            "sen costofren pinz",
            "hidrotorax",
        ),
        _stems("sen costofren libr", "sen costofren conserv"),
    ),
    LabelRule(
        "pleural_other",
        _stems(
            "engros pleural",
            "engros pleuroparenquimat",
            "engros pleuroapical",
            "engros apical",
            "engros biapical",
            "pleuroapical",
            "casquet apical",
            "placa pleural",
            "paquipleur",
        ),
    ),
    LabelRule("fracture", _stems("fractur", "callo de fractur", "callo", "aplastamient vertebral")),
    LabelRule(
        "support_devices",
        _stems(
            "marcapas",
            "sond",
            "tub endotraqueal",
            "tub de drenaj",
            "drenaj",
            "cateter",
            "catet",
            "sng",
            "mp",
            "cerclaj",
            "via central",
            "reservori",
            "traqueostomi",
            "dai",
            "electrod",
            "dispositiv",
        ),
    ),
)

NO_FINDING = _stems(
    "sin hallazg patolog",
    "sin hallazg significat",
    "sin alteracion",
    "sin alter",
    "estudi normal",
    "radiografi normal",
    "torax normal",
    "sin patolog",
    "dentro de la normal",
)
PRE_NEGATION: tuple[str, ...] = (
    r"no",
    r"sin",
    r"ni",
    r"ningun\w*",
    r"ausenci\w* de",
    r"no se observ\w*",
    r"no se apreci\w*",
    r"no se identific\w*",
    r"no se visualiz\w*",
    r"no hay",
    r"no signos? de",
    r"no sign\w* de",
    r"no evidenci\w* de",
    r"descart\w*",
    r"resolucion de",
    r"resuelt\w*",
    r"libre de",
    r"negativ\w* para",
)
PSEUDO_NEGATION: tuple[str, ...] = (
    r"sin cambi\w*",
    r"no cambi\w*",
    r"sin modific\w*",
    r"no se modific\w*",
)
PRE_UNCERTAINTY: tuple[str, ...] = (
    r"posibl\w*",
    r"probabl\w*",
    r"dudos\w*",
    r"sugest\w*",
    r"sugier\w*",
    r"sospech\w*",
    r"no se pued\w* descart\w*",
    r"no descart\w*",
    r"valor\w*",
    r"a descart\w*",
    r"podri\w*",
    r"impresion de",
)
POST_NEGATION: tuple[str, ...] = (r"no se observ\w*", r"resuelt\w*", r"ha desaparec\w*", r"desaparec\w*")
POST_UNCERTAINTY: tuple[str, ...] = (r"a descart\w*", r"a valor\w*", r"no descart\w*", r"dudos\w*", r"vs", r"versus")
SCOPE_BREAKS: tuple[str, ...] = (r"pero", r"aunque", r"salvo", r"excepto", r"con", r"y sign\w*", r"y")

OTHER_FINDINGS = _stems(
    "cirugi",
    "postquirurg",
    "osificacion",
    "hiperostosis",
    "deform",
    "fusion",
    "desflec",
    "hipoventilacion",
    "congestion",
    "congest",
    "icc",
    "suboptim",
    "metastas",
    "timic",
    "osteosintesis",
    "artrodesis",
    "epoc",
    "enfisem",
    "escoliosis",
    "cifosis",
    "elong aort",
    "elongacion aort",
    "aort elong",
    "ateromat",
    "hernia",
    "granulom",
    "bronquiectasi",
    "fibrosis",
    "tract fibros",
    "band fibros",
    "calcific",
    "hiperinsufl",
    "atrapamient aere",
    "hili prominent",
    "prominent hili",
    "cambi pulmonar cronic",
    "cambi cronic",
    "cambi degenerat",
    "espondil",
    "osteop",
    "bull",
    "adenopati",
    "bocio",
    "elevacion hemidiafragm",
    "eventracion",
    "pseudonodul",
    "perd de volum",
    "perd volum",
    "hipoexpansion",
    "tram broncovascul",
    "refuerz",
    "esternotomi",
    "material de sutur",
    "material quirurg",
    "protesis",
    "mastectomi",
    "lipomatosis",
    "ginecomasti",
    "sombr mamil",
    "mamil",
    "desplaz",
)

SPANISH = RuleSet(
    rules=RULES,
    no_finding=NO_FINDING,
    pre_negation=PRE_NEGATION,
    pseudo_negation=PSEUDO_NEGATION,
    pre_uncertainty=PRE_UNCERTAINTY,
    post_negation=POST_NEGATION,
    post_uncertainty=POST_UNCERTAINTY,
    scope_breaks=SCOPE_BREAKS,
    other_findings=OTHER_FINDINGS,
)
