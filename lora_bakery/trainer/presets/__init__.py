"""Training presets from reference/recipes.md, one TOML file each (read by ``trainer.config.load_preset``)."""
