"""Layer 7, study: the search. Its space, size bands and rungs; one trial (`trials`) and the worker
processes that run them (`worker`); the Optuna study in its storage (`storage`), its settings and
what a run asks of them (`settings`, `request`); records, the Pareto front, confirmation, the
pre-search estimate; a whole run (`optimize`). May import the layers below.
"""
