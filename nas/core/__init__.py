"""Foundation: errors users see (NasError), the limits of every option and space key, the
statistics of accuracies (intervals), storage URLs with their passwords masked, and the version.
Imports nothing of nas.
"""
