"""Code that runs inside the submission's kernel, sent as source text; imports nothing of grader."""
