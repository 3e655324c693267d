"""The command groups of the ``tagsmith`` CLI, one module per group; ``tagsmith.cli`` registers them.

Each command parses its options, calls one library function and renders the result; the shared
pieces are here too: output helpers (:mod:`.output`), the options and value types every group uses
(:mod:`.options`) and the per-command state with its lazily opened store and keystore (:mod:`.context`).
"""
