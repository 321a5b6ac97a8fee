"""Grading one notebook and many: load -> execute -> probe -> score -> result."""
