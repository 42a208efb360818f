"""multiverse.launch: the CLI, configs, Ray workers and job submission (the only place Ray is imported)."""
