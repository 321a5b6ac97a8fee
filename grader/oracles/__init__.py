"""Expected values: the reference solution, the recorded public checks, and the closed
forms of the theory.

* ``interface``: ``Oracle``, the questions the scoring code asks of an oracle;
* ``reference``: ``ReferenceOracle``, the instructor's reference solution (imported only
  when one is made, so that a student's install loads this package too);
* ``public``: the public checks, ``RecordingOracle`` to record them and ``ReplayOracle``
  to answer from them;
* ``weights``: the rule both draw a model's random weights by;
* ``choose``: which oracle this install has (``load_oracle``, ``BackgroundOracle``);
* ``theory`` and ``numerics``: the theory items, judged by scipy in any install.

This file imports nothing, so importing one module does not load the others.
"""
