"""What goes to students and to Gradescope: the template, the bundle, the wheels."""
