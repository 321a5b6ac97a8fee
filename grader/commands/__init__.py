"""The ``hw4grade`` sub-commands: one module each, arguments and ``run``."""
