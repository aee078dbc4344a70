"""One recipe per experiment of the paper: configs only, no loops (the loop is :mod:`iirsnn.train`).

``iirsnn experiments`` lists them; ``iirsnn train NAME`` runs one. Every recipe has ``--quick`` (a run
under a minute on 2 cores, what the tests use) and, for the temporal tasks, the LSTM baseline
(``--model lstm``).
"""

from iirsnn.experiments.recipes import RECIPES, Recipe, recipe

__all__ = ["RECIPES", "Recipe", "recipe"]
