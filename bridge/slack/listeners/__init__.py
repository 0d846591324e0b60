"""Bolt listener families; each module has ``register(app, deps)``."""
