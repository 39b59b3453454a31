"""Data: text for calibration and perplexity (``text``), benchmark mirrors (``mirror``)."""
