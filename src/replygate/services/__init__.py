"""Use cases, one unit of work each, over the ports in ``ports``."""
