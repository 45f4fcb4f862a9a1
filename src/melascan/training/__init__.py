"""Training engine (needs torch): config, models, weights, recipes, data, engine, runs, studies. See docs/training.md."""
