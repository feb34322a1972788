"""Layer 6, training: the training recipe (TrainConfig), quantization-aware training scored by the
integer engine (`train`), checkpoints, several seeds (`seeds`) and leave-one-speaker-out
cross-validation. May import the layers below.
"""
