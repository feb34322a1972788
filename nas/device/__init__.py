"""Layer 5, device: the memory and compute models, the device's memory regions, the C emitters
(model, front-end), the C project, the toolchains and the firmware run in QEMU. May import the layers below.
"""
