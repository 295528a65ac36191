"""The network's closed lists: stored keys (short ASCII), French labels, and accepted aliases.

Everything here is immutable (tuples of frozen dataclasses). Stored values never change once used in
the database; labels may be reworded freely. "nc" means "non communiqué".
"""

from __future__ import annotations

from dataclasses import dataclass

from ess_bot.config import DEPARTMENTS


@dataclass(frozen=True)
class Choice:
    key: str                       # stored value, short ASCII: "ante_creation"
    label: str                     # French label shown to people: "ante-création"
    aliases: tuple[str, ...] = ()  # other accepted spellings (matched accent-insensitively)

    def spellings(self) -> tuple[str, ...]:
        return (self.key, self.label, *self.aliases)


@dataclass(frozen=True)
class ChoiceList:
    """One closed list, e.g. the phases. ``name`` is the French name of the field."""

    name: str
    choices: tuple[Choice, ...]
    example: str = ""  # a typical value, used in error messages

    def keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.choices)

    def get(self, key: str) -> Choice:
        for c in self.choices:
            if c.key == key:
                return c
        raise KeyError(key)

    def label(self, key: str | None, default: str = "non renseigné") -> str:
        if key is None:
            return default
        try:
            return self.get(key).label
        except KeyError:
            return key

    def labels(self) -> list[str]:
        return [c.label for c in self.choices]


NC = Choice("nc", "non communiqué", ("n.c.", "non communique", "inconnu"))

DEPARTMENT_NAMES = {"21": "Côte-d'Or", "25": "Doubs", "39": "Jura", "58": "Nièvre", "70": "Haute-Saône",
                    "71": "Saône-et-Loire", "89": "Yonne", "90": "Territoire de Belfort"}
DEPARTMENT_LIST = ChoiceList("département", tuple(
    Choice(d, d, (DEPARTMENT_NAMES[d],)) for d in DEPARTMENTS), example="25")

NATURES = ChoiceList("nature", (
    Choice("creation", "création"),
    Choice("reprise", "reprise"),
    Choice("developpement", "développement"),
    Choice("consolidation", "consolidation"),
), example="création")

LEGAL_FORMS = ChoiceList("forme juridique", (
    Choice("association", "association", ("asso",)),
    Choice("scop", "SCOP"),
    Choice("scic", "SCIC"),
    Choice("cae", "CAE", ("coopérative d'activité et d'emploi",)),
    Choice("coop_autre", "coopérative autre", ("autre coopérative", "coopérative")),
    Choice("sas_sarl_ess", "SAS/SARL ESS", ("sas", "sarl", "sas-ess", "sarl-ess", "société commerciale ESS")),
    Choice("ei", "EI", ("entreprise individuelle", "micro-entreprise", "auto-entrepreneur")),
    Choice("nsp", "ne sait pas", ("nsp", "inconnue", "?")),
), example="scic")

ESUS = ChoiceList("agrément ESUS", (
    Choice("non", "non"),
    Choice("demande", "demandé", ("en cours",)),
    Choice("obtenu", "obtenu", ("oui",)),
), example="demandé")

GENDERS = ChoiceList("genre", (
    Choice("femme", "femme", ("f",)),
    Choice("homme", "homme", ("h",)),
    Choice("autre", "autre"),
    NC,
), example="femme")

AGE_BANDS = ChoiceList("tranche d'âge", (
    Choice("lt26", "moins de 26 ans", ("<26", "-26", "moins-26", "m26")),
    Choice("26_49", "26–49 ans", ("26-49",)),
    Choice("50plus", "50 ans et plus", ("50+", "+50", "plus-50")),
    NC,
), example="26-49")

EMPLOYMENT_STATUSES = ChoiceList("statut", (
    Choice("de_indemnise", "demandeur d'emploi indemnisé", ("de-indemnise",)),
    Choice("de_non_indemnise", "demandeur d'emploi non indemnisé", ("de-non-indemnise",)),
    Choice("de_longue_duree", "demandeur d'emploi de longue durée", ("de-longue-duree", "dld")),
    Choice("salarie", "salarié"),
    Choice("independant", "indépendant"),
    Choice("etudiant", "étudiant"),
    Choice("sans_activite", "sans activité"),
    NC,
), example="de-longue-duree")

MINIMA = ChoiceList("minima sociaux", (
    Choice("rsa", "RSA"),
    Choice("ass", "ASS"),
    Choice("aucun", "aucun", ("aucune",)),
    NC,
), example="rsa")

YES_NO_NC = (Choice("oui", "oui"), Choice("non", "non"), NC)
QPV = ChoiceList("QPV (quartier prioritaire)", YES_NO_NC, example="non")
FRR = ChoiceList("FRR (France Ruralités Revitalisation)", YES_NO_NC, example="oui")

PHASES = ChoiceList("phase", (
    Choice("accueil", "accueil"),
    Choice("emergence", "émergence"),
    Choice("ante_creation", "ante-création", ("montage", "antecreation")),
    Choice("financement", "financement"),
    Choice("lancement", "lancement"),
    Choice("post_creation", "post-création", ("postcreation",)),
), example="émergence")

MODALITIES = ChoiceList("modalité", (
    Choice("individuel", "individuel", ("rdv", "entretien", "présentiel", "en présentiel", "face à face")),
    Choice("collectif", "collectif"),
    Choice("atelier", "atelier"),
    Choice("permanence", "permanence"),
    Choice("visio", "visio", ("visioconférence",)),
    Choice("telephone", "téléphone", ("tel",)),
), example="visio")

THEMES = ChoiceList("thème", (
    Choice("etude_marche", "étude de marché", ("marche", "etude-de-marche")),
    Choice("modele_economique", "modèle économique", ("modele-economique", "business model")),
    Choice("juridique", "juridique"),
    Choice("gouvernance", "gouvernance"),
    Choice("financement", "financement"),
    Choice("rh", "RH", ("ressources humaines",)),
    Choice("commercial", "commercial"),
), example="juridique")

OUTCOMES = ChoiceList("issue", (
    Choice("creation", "création"),
    Choice("abandon", "abandon"),
    Choice("reorientation", "réorientation"),
    Choice("report", "report", ("reporte",)),
), example="création")

REFERRAL_STATUSES = ChoiceList("statut de l'orientation", (
    Choice("proposee", "proposée"),
    Choice("acceptee", "acceptée"),
    Choice("refusee", "refusée"),
))

AGE_MIN, AGE_MAX = 14, 99  # ages a holder may plausibly have (a number outside is a typing slip)


def age_band_for(age: int) -> str:
    """The band key of an age in years: 25 → ``lt26``, 30 → ``26_49``, 50 → ``50plus``."""
    if age < 26:
        return "lt26"
    if age < 50:
        return "26_49"
    return "50plus"


NOTE_MAX = 280
LABEL_MAX = 60
