"""Report-text scrubbing rules as data: what an identifier looks like, and what replaces it.

Order matters: earlier rules run first (a date of birth before any date, labelled identifiers before
bare digit runs). Extend by adding a Rule; `kind` names the placeholder written in its place.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    kind: str  # placeholder written as "[KIND]", or a special kind handled in code ("DATE", "AGE")
    pattern: str  # a regular expression (verbose mode off); group "keep" is kept in front of the placeholder


MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Court|Ct|Boulevard|Blvd|Way|Place|Pl|Terrace|View|"
    r"Parkway|Pkwy|Circle|Cir|Highway|Hwy|Square|Sq)"
)
INSTITUTION_WORDS = (
    r"(?:Hospital|Medical Cent(?:er|re)|Clinic|Health System|Health Cent(?:er|re)|Infirmary|Imaging Cent(?:er|re)|"
    r"Cancer Cent(?:er|re)|Children's Hospital|Healthcare|Radiology Associates|Diagnostic Cent(?:er|re)|"
    r"NHS (?:Foundation )?Trust)"
)
TITLES = r"(?:Drs|Dra|Dr|Doctor|Doctora|Mr|Mrs|Ms|Miss|Prof|Professor|Nurse|RN|NP|PA-C|Sr|Sra|Srta)"
# Common given names (US census and international); a capitalised word after one is taken as a surname.
GIVEN_NAMES = (
    "James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew Anthony "
    "Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan "
    "Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Alexander "
    "Frank Patrick Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Douglas Zachary Peter Kyle "
    "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Margaret Sandra "
    "Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah Stephanie Rebecca Sharon Laura "
    "Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma Nicole Helen Samantha Katherine Christine "
    "Debra Rachel Carolyn Janet Catherine Maria Heather Diane Ruth Julie Olivia Joyce Virginia Victoria Kelly "
    "Jane Lauren Christina Joan Evelyn Judith Megan Andrea Cheryl Hannah Jacqueline Martha Gloria Teresa Ann Sara "
    "Madison Frances Kathryn Janice Jean Abigail Alice Judy Sophia Grace Denise Amber Doris Marilyn Danielle "
    "Beverly Isabella Theresa Diana Natalie Brittany Charlotte Marie Kayla Alexis Lori Amara Hiroshi Fatima "
    "Giulia Sven Olga Mateo Priya Kwame Ingrid Mohammed Ahmed Ali Wei Li Yuki Raj Ana Juan Carlos Luis Sofia "
    "Lucia Elena Ivan Dmitri Anya Chen Aisha Omar Leila Noah Liam Ethan Mason Lucas Logan Oliver Elijah Aiden"
).split()
# Common surnames: matched after a given name, a title, or in "Surname, Given" order.
SURNAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson "
    "Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis "
    "Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall "
    "Rivera Campbell Mitchell Carter Roberts Okafor Tanaka Haddad Rossi Lindqvist Petrova Fernandez Sharma "
    "Mensah Berg Kim Patel Singh Chen Wang Li Zhang Liu Muller Schmidt Schneider Fischer Weber Meyer Wagner"
).split()

# Labels after which the rest of the field is a person (up to the line end or a degree).
PERSON_FIELDS = (
    r"(?:dictated|signed|electronically signed|reviewed|read|interpreted|transcribed|verified|approved|reported)"
    r"(?: and signed)? by|attending(?: radiologist| physician)?|referring(?: physician| doctor)?|"
    r"ordering(?: physician| provider)?|requesting(?: physician| doctor)?|(?:performing|reading|consulting) physician|"
    r"radiologist|resident|technologist|sonographer|cc|patient name|name|pcp|primary care(?: physician| provider)?|"
    r"(?:firmado|informado|revisado|dictado|realizado)(?: electr[oó]nicamente)? por|paciente"
)
# Title-case or ALL CAPS (RIS text is often upper case), accented letters included (Martínez, WRÓBEL, O'Brien).
UPPER = r"[A-ZÀ-ÖØ-ÞĄĆĘŁŃŚŹŻČŘŠŽ]"
# At least two letters ("Li", "O'Brien"), so a capital alone ("I" of "MRI") is never a name.
NAME_WORD = r"(?:" + UPPER + r"(?=[^\W\d_]|['’-][^\W\d_])[^\W\d_]*(?:['’-][^\W\d_]+)*)"
TITLE_WORD = r"(?:" + UPPER + r"[a-zà-öø-ÿąćęłńśźżčřšž]+(?:['’-][^\W\d_]+)*)"  # Title-case only
CREDENTIALS = r"(?:M\.?D\.?|D\.?O\.?|Ph\.?D\.?|R\.?N\.?|N\.?P\.?|PA-C|RT\(R\))"
# Spanish months, also as PadChest's stems ("marz", "diciembr"); "mayo" has its own rules (see RULES).
SPANISH_MONTHS = (
    r"(?:ener(?:o)?|febrer(?:o)?|marz(?:o)?|abril|juni(?:o)?|juli(?:o)?|agost(?:o)?|set?p?tiembr(?:e)?|"
    r"octubr(?:e)?|noviembr(?:e)?|diciembr(?:e)?)"
)

# Clinical eponyms and terms that hold a name or a word the name rules take for one: masked while the rules run.
EPONYMS = (
    r"Sister Mary Joseph|Hill-Sachs|Swan-Ganz|Mallory-Weiss|Osgood-Schlatter|Legg-Calv[eé]-Perthes|Salter-Harris|"
    r"Dandy-Walker|Arnold-Chiari|Kerley [ABC]|Morison(?:'s)? pouch|pouch of Douglas|Baker(?:'s)? cyst|"
    r"Jones fracture|Smith(?:'s)? fracture|Colles(?:'s)? fracture|Bennett(?:'s)? fracture|Barton(?:'s)? fracture|"
    r"Hodgkin(?:'s)?|Chiari|Parkinson(?:'s)?|Down syndrome|Crohn(?:'s)?|Wilms(?:'s)?|Ewing(?:'s)?|Paget(?:'s)?|"
    r"Barrett(?:'s)?|Zenker(?:'s)?|Virchow(?:'s)?|Westermark|Hampton(?:'s)? hump|Fleischner|Pancoast|Kaposi|"
    r"Graves(?:'s)?|Hashimoto(?:'s)?|Cushing(?:'s)?|Addison(?:'s)?|Bosniak|Lisfranc|Segond|Bankart|Schmorl|"
    r"Morgagni|Bochdalek|Klatskin|Tornwaldt|Monteggia|Galeazzi|Jefferson fracture|Wegener(?:'s)?|Alzheimer(?:'s)?"
)

# Upper-case words of clinical text that a RIS-style "LAST,FIRST" rule must not take for a name.
CAPS_TERMS = (
    r"(?:CHEST|LEFT|RIGHT|PA|AP|LAT|LATERAL|VIEWS?|PORTABLE|ABDOMEN|PELVIS|HEAD|NECK|SPINE|KNEE|HIP|SHOULDER|"
    r"COPD|CHF|SOB|CP|PAIN|FEVER|COUGH|HTN|DM|CAD|ESRD|CKD|MVA|MVC|TRAUMA|FALL|HISTORY|FINDINGS|IMPRESSION)"
)
# Words after which a capital and a period are a class or a type, not an initial ("Hepatitis C. Hepatocellular").
_LETTER_TERMS = "Hepatitis Vitamin Type Stage Grade Class Group Factor Lead View Zone Level Segment Protein".split()
LETTER_TERMS = "(?:" + "|".join(_LETTER_TERMS) + ")"
NOT_A_LETTER_TERM = "".join(f"(?<!{word} )(?<!{word.lower()} )" for word in _LETTER_TERMS)

RULES: tuple[Rule, ...] = (
    Rule("EMAIL", r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),
    Rule("URL", r"\bhttps?://\S+|\bwww\.[\w-]+(?:\.[\w-]+)+\S*"),
    # A UID whole, before the date and number rules take it apart ("1.2.840.113619...").
    Rule("UID", r"\b\d+(?:\.\d+){3,}\b"),
    Rule("SSN", r"\b\d{3}[- ]\d{2}[- ]\d{4}\b"),
    Rule("PHONE", r"\+\d{1,3}(?:[\s.-]?\(?\d{1,4}\)?){2,5}\d\b"),
    Rule("PHONE", r"(?:\+?1[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-])\d{3}[\s.-]\d{4}\b(?:\s*(?:ext\.?|x)\s*\d{1,5}\b)?"),
    Rule(
        "PHONE",
        r"(?i)(?P<keep>\b(?:pager|phone|tel|telephone|tel[eé]fono|contacto|ext|extension|call|beeper)\.?\s*[:#]?\s*"
        r"(?:at\s+)?)"
        r"(?:x\s?)?\d[\d\s.-]{2,10}\d\b",
    ),
    Rule("PHONE", r"\b\d{3}-\d{4}\b|(?i:\bx\s?\d{3,5}\b)"),
    # Spanish numbers as written: 934 550 087, 612 34 56 78.
    Rule("PHONE", r"\b[6-9]\d{2}(?:\s\d{3}\s\d{3}|\s\d{2}\s\d{2}\s\d{2})\b|\b[89]\d\s\d{3}\s\d{2}\s\d{2}\b"),
    # Numbers in four or more dashed groups (560-40-78-5), or letters and digits around a slash (XW277/90683);
    # before the date rules take three of the groups for a date. (After the phone rules.)
    Rule("ID", r"\b\d+(?:-\d+){3,}\b|\b[A-Z]{1,3}\d{2,}/\d{3,}\b"),
    Rule(
        "DOB",
        r"(?i)(?P<keep>\b(?:DOB|D\.O\.B\.?|date of birth|born(?: on)?|birth ?date|fecha de nacimiento|F\. ?nac\.?)"
        r"\s*:?\s*)(?:\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}|" + MONTHS + r"\.?\s+\d{1,2},?\s+\d{4}|\d{4})",
    ),
    Rule(
        "MRN",
        r"(?i)(?P<keep>\b(?:MRN|MR#|medical record(?: number| no\.?| #)?|med(?:ical)? rec(?:ord)?\.? ?#|patient id"
        r"|pt id|hospital number|unit number|exam id|study id|exam #|study #|order #|requisition #|NHC|DNI|NIE"
        r"|historia cl[ií]nica|n[º°o]\.? de historia|SS#|SSN|CIP|exam no\.?|exam number|job ?#|job no\.?"
        r"|SN|S/N|serial(?: number| no\.?)?|n[º°]\.? de petici[oó]n|petici[oó]n)"
        r"\s*[:#]?\s*(?:no\.?|number|n[º°])?\s*[:#]?\s*)"
        r"[A-Za-z]{0,4}-?\d[\w-]{2,}",
    ),
    Rule(
        "ACCESSION",
        r"(?i)(?P<keep>\b(?:accession|acc)(?:ession)?\s*(?:number|no\.?|#)?\s*[:#]?\s*)"
        r"[A-Za-z]{0,4}-?\d[\w-]{3,}",
    ),
    Rule(
        "NAME",
        r"(?im)(?P<keep>\b(?:" + PERSON_FIELDS + r")\s*:?\s+(?:(?i:" + TITLES + r")\.?\s+)?)"
        # running text, not a field: a lower-case function word, or a role rather than a person
        r"(?!(?-i:(?:at|on|in|of|the|a|an|and|to|for|with|was|is|who|has|had|will|reviewed|discussed|called|notified|"
        r"aware|present|informed)\b))(?!(?:physicians?|radiologists?|attendings?|providers?|team|service|staff)\b)(?=[^\W\d_])"
        r"[^\n:]{2,60}?"
        r"(?<!\bDr)(?<!\bDra)(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bSt)"
        r"(?=,?\s*" + CREDENTIALS + r"?\s*(?:[\n;]|$|\.\s|\s+on\b|,?\s+\d|\s{2}|\s+/))",
    ),
    Rule(
        "ADDRESS",
        r"\b\d{1,6}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][a-z]+\.?\s+){1,3}" + STREET_SUFFIX + r"\b\.?"
        r"(?:,?\s+(?:Apt|Suite|Unit)\.?\s*\w+)?(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)*)?(?:,\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?)?",
    ),
    Rule("ADDRESS", r"\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)*,\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b"),
    # A UK postcode (with the town before it), and a Spanish postcode with its town after a comma.
    Rule("ADDRESS", r"(?:\b[A-Z][a-z]+,?\s+)?\b[A-Z]{1,2}\d[A-Z\d]?\s\d[ABD-HJLNP-UW-Z]{2}\b"),
    Rule("ADDRESS", r"(?<=,\s)\d{5}\s+[A-Z][a-zà-ÿ]+(?:\s[A-Z][a-zà-ÿ]+)?\b"),
    # "14 Trelawney Close": a house number and a title-case street of a kind STREET_SUFFIX lacks.
    Rule("ADDRESS", r"\b\d{1,5}\s+[A-Z][a-z]+\s+(?:Close|Crescent|Gardens|Mews|Grove|Row|Walk|Green|Hill Road)\b"),
    Rule(
        "ADDRESS",
        r"(?i)\b(?:c/|calle|avda\.?|avenida|plaza|paseo)\s+[^\W\d_][^,\n]{1,40}?,?\s*(?:n[º°]\s*)?\d{1,4}\b",
    ),
    Rule(
        "INSTITUTION",
        r"\b(?:Hospital|Cl[ií]nica|Centro M[eé]dico|Centro de Salud)(?:\s+(?:de|del|la|los|las|"
        + NAME_WORD
        + r")){1,5}",
    ),
    Rule("INSTITUTION", r"\b(?:(?:St|Saint|Mount|Mt)\.?\s+)?(?:[A-Z][A-Za-z'.-]+\s+){0,5}" + INSTITUTION_WORDS + r"\b"),
    Rule("INSTITUTION", r"(?P<keep>\b(?:from|at|to|in)\s+)(?:[A-Z][a-z]+\s+)+General\b"),
    # A practice named by its place: "Northbrook Imaging Associates", "Lakeside Radiology Group".
    Rule(
        "INSTITUTION",
        r"\b(?:[A-Z][A-Za-z'.-]+\s+){1,4}(?:Imaging|Radiology|Medical|Diagnostic|Orthop(?:a)?edic|Surgical)\s+"
        r"(?:Associates|Group|Partners|Services|Specialists|Institute)\b",
    ),
    Rule("DATE", r"\b(?:19|20)\d{2}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?![\d-])"),
    Rule("DATE", r"\b\d{1,2}/\d{1,2}/\d{4}\b|\b\d{1,2}/\d{1,2}/\d{2}\b"),
    Rule("DATE", r"\b(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\b"),
    Rule("DATE", r"\b" + MONTHS + r"\.?\s+\d{1,2}(?:st|nd|rd|th)?,?\s+\d{4}\b"),
    Rule("DATE", r"\b\d{1,2}(?:st|nd|rd|th)?\s+(?:of\s+)?" + MONTHS + r"\.?,?\s+\d{4}\b"),
    # Forms that are not re-written with a shift, only removed: other separators, RIS styles, partial dates.
    # (Not YYYY-MM-DD or MM/DD/YYYY: those were shifted above and must stay.)
    Rule(
        "DATEX",
        r"\b(?!(?:19|20)\d{2}-\d{2}-\d{2}\b)\d{1,4}[.-]\d{1,2}[.-]\d{2,4}\b(?!\s*(?:cm|mm|x))"
        r"|\b(?:19|20)\d{2}/\d{1,2}/\d{1,2}\b|\b(?:19|20)\d{2}-(?:\d-\d{1,2}|\d{2}-\d)\b",
    ),
    Rule("DATEX", r"(?i)\b\d{1,2}-?" + MONTHS + r"-?(?:19|20)?\d{2}\b"),
    Rule("DATEX", r"(?<!\d )\b" + MONTHS + r"\.?,?\s+(?:of\s+)?(?:19|20)\d{2}\b"),
    # Spanish: "14 de marzo de 2021", "marzo de 2021"; and day month year written with spaces ("14 03 2021").
    Rule(
        "DATEX",
        r"(?i)\b(?:\d{1,2}\s+(?:de\s+)?)?"
        + SPANISH_MONTHS
        + r"(?:\s+(?:de|del)\s+(?:19|20)\d{2}|\s+(?:19|20)\d{2})?\b",
    ),
    # "mayo" (and PadChest's stem "may") only with a day or a year: "may" is also English.
    Rule("DATEX", r"(?i)\b\d{1,2}\s+(?:de\s+)?mayo?(?:\s+(?:de|del)\s+(?:19|20)\d{2}|\s+(?:19|20)\d{2})?\b"),
    Rule("DATEX", r"(?i)\bmayo?\s+(?:de\s+|del\s+)?(?:19|20)\d{2}\b"),
    Rule("DATEX", r"\b(?:0?[1-9]|[12]\d|3[01])\s(?:0?[1-9]|1[0-2])\s(?:19|20)\d{2}\b"),
    # A bare month/day only with two digits each ("01/03"): "1/2" is a fraction in clinical text.
    Rule("DATEX", r"\b(?:0[1-9]|1[0-2])/(?:0[1-9]|[12]\d|3[01])\b(?!/)"),
    # Month and year ("04/2015", "4-2015"): Safe Harbor removes every date element but the year.
    # (not the tail of a full date an earlier rule wrote: "03/03/1968")
    Rule("DATEX", r"(?<![\d/.-])\b(?:0?[1-9]|1[0-2])[/-](?:19|20)\d{2}\b(?![/-]\d)"),
    # A month and a day or a two-digit year ("cath 2/18", "CABG in 3/80"); not a score ("pain 3/10", "grade 2/4").
    Rule(
        "DATEX",
        r"(?<![Gg]rade )(?<![Ss]core )(?<![Pp]ain )(?<![Rr]atio )(?<![\w/.])(?:[1-9]|1[0-2])/\d{2}\b(?![/.]\d)"
        r"(?!\s*(?:pain|strength|power|scale|score|rule|criteria))",
    ),
    # A month named alone after a word that dates it ("since November", "in early March"); not "may".
    Rule(
        "DATEX",
        r"(?i)(?P<keep>\b(?:in|since|until|from|last|this|next|early|late|mid|during|by)\s+(?:early\s+|late\s+|mid-?)?)"
        r"(?:January|February|March|April|June|July|August|September|October|November|December)\b",
    ),
    # A month and day without a year (after the rules above, so a shifted full date is left alone).
    Rule("DATE", r"\b" + MONTHS + r"\.?\s+\d{1,2}(?:st|nd|rd|th)?\b(?!,?\s+\d{4})(?!\s*(?:cm|mm))"),
    Rule(
        "NAME",
        r"(?P<keep>\b(?i:"
        + TITLES
        + r")\.?\s*)(?:(?:van|von|de|der|da|del|la|le|di|du)\s+)*"
        + NAME_WORD
        + r"(?:\s+(?:van|von|de|den|der|ten|ter|da|das|dos|del|la|le|y)\b)*"
        r"(?:\s+" + NAME_WORD + r"){0,2}(?:\s+and\s+" + NAME_WORD + r")?",
    ),
    # "dr lindqvist": a lower-case name after a lower-case title.
    Rule("NAME", r"(?P<keep>\b(?:dr|dra|drs)\.?\s+)(?!(?:and|or|the|to|of|was|is)\b)[a-z][a-z'-]{1,}"),
    Rule("NAME", r"(?P<keep>\b(?:[Pp]atient|[Pp]t\.?|[Nn]ame)\s*:?\s+)" + NAME_WORD + r",?\s+" + NAME_WORD),
    # One title-case word after "patient"/"Pt" in running text ("patient Lindgren declined").
    Rule(
        "NAME",
        r"(?P<keep>\b(?:patient|[Pp]t\.?)\s+)(?!(?:The|This|That|With|Has|Was|Is|And|In|On|For|Who|States)\b)"
        + TITLE_WORD,
    ),
    # First M. Last, F. Last, and one to three title-case words signed with a credential ("Bell, MD").
    Rule("NAME", r"\b(?!(?i:" + LETTER_TERMS + r")\b)" + TITLE_WORD + r"\s+[A-Z]\.\s+" + NAME_WORD + r"\b"),
    Rule(
        "NAME",
        NOT_A_LETTER_TERM + r"(?<![\w.])[A-Z]\.\s+" + TITLE_WORD + r"\b(?!\s+(?:coli|aureus|difficile|pneumoniae)\b)",
    ),
    Rule(
        "NAME",
        NAME_WORD + r"(?:,?\s+(?:" + NAME_WORD + r"|[A-Z]\.?(?=\s)))?(?:,?\s+" + NAME_WORD + r")?(?:\s+[A-Z]\.?)?"
        r"(?=,?\s+" + CREDENTIALS + r"(?!\w))",
    ),
    # RIS style LAST,FIRST (no space after the comma); with a space it is taken only after a label (above).
    # Not inside a comma list of upper-case terms ("HERNIA REPAIR,COPD,EMPHYSEMA").
    Rule(
        "NAME",
        r"(?<![,\w])(?!" + CAPS_TERMS + r",)[A-Z]{2,}(?:['-][A-Z]+)?,(?!" + CAPS_TERMS + r"\b)[A-Z]{3,}\b(?![,\w])",
    ),
    Rule("NAME", r"\b(?:" + "|".join(SURNAMES) + r"),\s+" + NAME_WORD + r"\b"),
    Rule("NAME", r"\b(?:" + "|".join(GIVEN_NAMES) + r")\s+" + NAME_WORD + r"\b"),
    Rule("NAME", r"(?i)\b(?:" + "|".join(GIVEN_NAMES) + r")\s+(?:" + "|".join(SURNAMES) + r")\b"),
    Rule("NAME", r"\b(?:" + "|".join(SURNAMES) + r")\b(?=\s+(?:called|paged|notified|discussed|reported|at bedside))"),
    Rule("NAME", r"(?i)(?<=\bdiscussed with\s)(?!the\b|dr\b)[A-Z][a-zA-Z'-]+\b"),
    # A DICOM person name copied into text: LAST^FIRST^MIDDLE.
    Rule("NAME", r"\b[^\W\d_][\w'’ -]*\^[^\W\d_][\w'’-]*(?:\^[\w'’.-]*)*"),
    # A name after whom a patient was referred or with whom findings were discussed.
    Rule(
        "NAME",
        r"(?P<keep>\b(?i:referral from|referred by|seen by|spoke with|spoke to|d/w|discussed with)\s+"
        r"(?:(?i:" + TITLES + r")\.?\s+)?)" + NAME_WORD + r"(?:\s+" + NAME_WORD + r"){0,2}",
    ),
    # A relative or companion named in Title Case: "his niece, Zhang Min", "wife Helen Quinn".
    Rule(
        "NAME",
        r"(?P<keep>\b(?i:wife|husband|son|daughter|niece|nephew|mother|father|sister|brother|partner|spouse|"
        r"friend|caregiver|guardian|interpreter)[,:]?\s+\(?)" + NAME_WORD + r"(?:\s+" + NAME_WORD + r"){0,2}",
    ),
    Rule("INITIALS", r"\b[A-Z]{2,3}/[a-z]{2,3}\b"),
    Rule("AGE", r"(?i)\b(?:9\d|1[0-4]\d)(?=(?:\s*|-)(?:years?|yrs?|y)(?:\s*|-)?(?:old|o)\b)"),
    Rule("AGE", r"(?i)\b(?:9\d|1[0-4]\d)(?=\s*(?:y/o|yo|y\.o\.)(?!\w))"),
    Rule("AGE", r"\b(?:9\d|1[0-4]\d)(?=\s?[MF]\b)"),
    Rule("AGE", r"(?i)\b(?:9\d|1[0-4]\d)(?=\s*(?:años|anos|a\.)(?!\w))"),
    Rule("AGE", r"(?i)(?<=\bage\s)(?:9\d|1[0-4]\d)\b|(?<=\baged\s)(?:9\d|1[0-4]\d)\b|(?<=\bage:\s)(?:9\d|1[0-4]\d)\b"),
    Rule("ID", r"\b[A-Za-z]{0,4}\d{7,}[A-Za-z]?\b"),
)
