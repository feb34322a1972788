"""Layer 4, engine: the bit-exact integer engine and the packed weight layout that it, the memory model
and the C share. May import the layers below (nas.model, nas.features, nas.data, nas.core).
"""
