"""The ``gitops-dora`` command line. Each ``cmd_*.py`` module registers its own commands."""
