"""Synthetic national year of releases from detention: the three feeds and a ground truth.

See ``docs/synth.md``.
"""

from terugkeer.synth.generator import SynthSummary, generate
from terugkeer.synth.messy import MessyRates

__all__ = ["MessyRates", "SynthSummary", "generate"]
