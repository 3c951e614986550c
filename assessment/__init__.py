"""GitOps maturity model (Level 0-3) and the evidence detectors behind it."""
