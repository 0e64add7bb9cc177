"""jkn: early warning for JKN health-insurance coverage and employer compliance."""

__version__ = "0.1.0"
