"""Layer 3, model: model configurations (architecture, number formats), the quantizers and the
recurrent cells (PyTorch; the GRU kernel). May import the layers below (nas.features, nas.data, nas.core).
"""
