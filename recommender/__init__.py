"""A self-hosted, consent-aware personalization engine for shops."""

__version__ = "0.1.0"
