"""Layer 7, study: the search (space, size bands, rungs, trials on an Optuna study, its settings and
records, the Pareto front, confirmation, the pre-search estimate). May import the layers below.
"""
