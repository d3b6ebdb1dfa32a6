"""The command-line entry points: thin Hydra mains over the library."""
