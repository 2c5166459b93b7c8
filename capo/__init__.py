"""CAPO Lab core: MTPE data, preference objectives, scoring and training (no UI, no storage)."""
