"""Typed configuration: ego model, watchdog thresholds, robot descriptions, scenarios."""
