"""Pure analyses of stored results (no I/O): sweeps, and later intervals, tests and regimes."""
