"""The notebook profiles (TF2 template, original TF1 notebooks): how each is run and probed."""
