"""Synthetic national year of releases from detention: the three feeds and a ground truth.

See ``docs/synth.md``.
"""

from terugkeer.synth.generator import SynthSummary, generate, generate_years
from terugkeer.synth.messy import MessyRates
from terugkeer.synth.series import History

__all__ = ["History", "MessyRates", "SynthSummary", "generate", "generate_years"]
