"""Deriving deployments: which commits a deployment shipped (revisions, attribution), how a
reconciler's objects map to services and environments, and which images link a deployment back to
the source repository. Collectors, importers and the webhook receiver all call into this package;
it imports none of them, so the derivation rules live in one place."""
