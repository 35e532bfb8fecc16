"""Retention: per-centre periods for learner work, legal holds, and audited removal."""
