"""`edgeml bench` and `edgeml inspect`: timing, memory, per-op profile and peer comparison of a model.

Only the runtime is needed; each peer (LiteRT, TFLite Micro, onnxruntime) is imported when it is compared.
"""
