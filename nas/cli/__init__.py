"""Layer 9, command line: parses options, calls the library and prints. The only layer that prints
or sets process-wide state (logging levels).
"""
