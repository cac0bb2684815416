"""Low-level layers: block specs (pure data with exact costs), static layers built from them,
and elastic layers that hold the largest weights. Nothing here imports the search spaces."""
