"""The training loop, split by job: setup, epoch steps, text conditioning, precision, state,
outputs, samples, plots and multi-process helpers. The public entry is
:func:`lora_bakery.trainer.train.train`.
"""
