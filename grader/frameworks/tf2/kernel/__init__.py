"""The kernel side of the ``tf2`` framework (eager Keras): sent as text, never imported."""
