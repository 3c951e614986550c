"""Demo steps ``NN_name.py``, each a ``run(demo: DemoContext)``, run in name order."""
