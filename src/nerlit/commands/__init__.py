"""The ``nerlit`` command and its verbs, each thin: compose the config, call the library, print.

``cli`` dispatches ``nerlit <verb>``; each verb module is a Hydra app (``python -m nerlit.<verb>``
runs the same one through the small module of that name above this package).
"""
