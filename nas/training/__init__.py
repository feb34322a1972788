"""Layer 6, training: the training recipe (TrainConfig), quantization-aware training scored by the
integer engine, and leave-one-speaker-out cross-validation. May import the layers below.
"""
