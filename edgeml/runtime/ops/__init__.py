"""One module per op family: its validation, prepare and packing.  Each module's OPS maps the op types it
implements to their OpSpec; edgeml/runtime/registry.py collects them."""
