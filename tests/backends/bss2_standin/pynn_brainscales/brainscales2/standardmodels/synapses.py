"""Stand-in for pynn_brainscales.brainscales2.standardmodels.synapses (tests only)."""


class StaticSynapse:
    def __init__(self, weight=0.0, delay=None):
        self.weight = weight
        self.delay = 0 if delay is None else delay
