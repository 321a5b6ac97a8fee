"""Expected values: the reference solution, the recorded public checks, and the closed
forms of the theory."""
