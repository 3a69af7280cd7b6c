"""Provider app: one module per sending provider behind one small contract (see ``base.py``)."""
