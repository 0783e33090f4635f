"""Stand-in for pynn_brainscales.brainscales2.standardmodels (tests only)."""

from . import cells, synapses

__all__ = ["cells", "synapses"]
