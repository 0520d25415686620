"""The meter agent: the program on the meter box, and the wire protocol both sides import.

Nothing in this package may import Django: it installs and runs on its own on the meter.
"""
