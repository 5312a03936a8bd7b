"""Each job's config, declared as pydantic models: one module per job (curate, classifier, swarm, shards, run),
the shared base in `base` and the input globs in `inputs`. Import from the job's module."""
