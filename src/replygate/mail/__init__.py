"""Email format: compose, parse, screen; no network."""
