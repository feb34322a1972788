"""Layer 8, bundle: what `nas export` writes for a chosen trial (checkpoint, packed weights, the C project
and its README). May import the layers below; independent of nas.report.
"""
