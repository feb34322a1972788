"""Foundation: errors users see (NasError), the limits of every option and space key, and the statistics
of accuracies (intervals). Imports nothing of nas.
"""
