"""Faithful fakes of the webui's modules, for tests of the A1111 adapter without a webui.

``a1111/`` stands in for A1111 1.10.1's ``modules`` package and ``lora/`` for the built-in Lora
extension's ``networks``/``network`` modules. They copy the *behaviour* our adapter depends on
(the non-reentrant FIFOLock, ``State``, ``wrap_gradio_gpu_call``, in-place LoRA merging with
backups...) from the real sources, cited in each file, and record what they were given. The
fake ``sd_model`` holds real tensors from ``tiny_checkpoint`` under the live (hijacked) names.
``webui.install_fake_webui`` maps them into ``sys.modules``; the ``fake_webui`` fixture undoes it.
"""
