"""What every stage runs on: staged units, decisions, files, progress, and the runner's workers."""
