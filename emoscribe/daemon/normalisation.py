"""Which moments the daemon judges utterances against: the stream's speaker or the node's population.

A bundle's ``speaker.onnx`` is trained for one of them (``Bundle.reference``), and ``[population] enabled =
"auto"`` follows it; ``true`` or ``false`` overrides it, with a warning where that is not what the heads learnt.
"""

from __future__ import annotations

import logging

from emoscribe.bundle import Bundle
from emoscribe.daemon.population import PopulationNormaliser, PopulationSettings
from emoscribe.daemon.speaker_reference import Normaliser, speaker_normaliser

log = logging.getLogger(__name__)


def open_normaliser(
    bundle: Bundle, speaker_normalisation: bool, population: PopulationSettings
) -> Normaliser | None:
    """The normaliser for ``bundle`` under ``[engine] speaker_normalisation`` and ``[population]``; ``None``
    where utterances are judged alone. A ``ValueError`` says why a forced population cannot run."""
    forced = population.enabled != "auto"
    if population.enabled == "true" or (not forced and bundle.reference == "population"):
        if bundle.reference == "speaker":
            log.warning(
                "%s was trained on speaker references; population moments are not what it learnt", bundle.path
            )
        return PopulationNormaliser(bundle, population)
    if bundle.reference == "population" and speaker_normalisation:
        log.warning("%s was trained on population references; judged against each stream's instead", bundle.path)
    return speaker_normaliser(bundle, speaker_normalisation)
