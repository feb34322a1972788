"""Layer 1, data: FSDD recordings (listing, decoding with soundfile, splits, waveforms), their
checksums and the download. May import nas.core only.
"""
