"""MarketLab: raw shop data -> Delta lake -> models -> marketing strategies with measured effect."""

__version__ = "0.1.0"
