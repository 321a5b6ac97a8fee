"""The ``tf2`` framework: today's template (TensorFlow 2, Keras 3, eager execution)."""
