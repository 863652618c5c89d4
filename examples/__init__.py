"""Example apps: ``asyncendpoints dev examples.reports:app``."""
