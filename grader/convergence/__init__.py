"""The convergence items: the grader trains each GAN through the submission's kernel and
judges samples it draws itself.

The kernel trains the student's networks with the grader's loop, from start weights the
grader drew, in chunks; after each chunk it hands back the weights, and the grader draws
samples from them with its own numpy copy of the specified networks (``networks``), scores
them (``grader.mnist.evaluator``) and checks that the run is plausible (``integrity``)
against lines calibrated on reference runs (``lines``). The run stops at the first
checkpoint whose verdict is settled (``judge``); a failing model is retrained with one
reference part at a time (``attribution``); ``grade`` turns it all into an item result
with its figures (``figures``).
"""
