"""Reading inputs: work units (files or byte ranges) and the readers of every format."""
