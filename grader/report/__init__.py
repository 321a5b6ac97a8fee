"""Renderings of a result: JSON, gradebook CSV, feedback pages, Gradescope, Classroom, terminal."""
