"""The kernel side of the ``tf1`` framework (graph mode): sent as text, never imported."""
