"""Model optimization with tensorflow-model-optimization and TFLite conversion (imports TensorFlow lazily)."""
