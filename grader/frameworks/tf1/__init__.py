"""The ``tf1`` framework: the original TensorFlow 1 notebooks (2017, 2018), in graph mode."""
