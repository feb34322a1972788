"""Layer 2, features: the float MFCC, the integer device front-end (frame by frame from PCM), the
waveform augmentation and the feature cache. May import nas.data and nas.core.
"""
