"""Use cases: what people and the engine do to incidents, in units of work on the ports."""
