"""Layer 8, report: the study's and the dataset's HTML pages, their figures and tables. May import the
layers below; independent of nas.bundle.
"""
