"""DeepStock companion: inventory simulator, policy regularizations, DRL methods and experiments."""

__version__ = "0.1.0"
