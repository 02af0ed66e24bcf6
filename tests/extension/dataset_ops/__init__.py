"""Tests of lora_bakery.extension.dataset_ops (operations by name over real files)."""
