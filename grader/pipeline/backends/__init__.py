"""Where a batch is graded: this machine (serial, process pool) or a Dask cluster."""
