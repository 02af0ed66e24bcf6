"""The Dataset tab's sections, one module each (``dataset_tab.build`` places them).

``common`` holds what every section shares (tables, plan previews, jobs, readable errors),
``thumbs`` the thumbnail cache that keeps the caption gallery fast on 2,000 images. The sections
call ``lora_bakery.extension.dataset_ops`` (the same operations as ``bakery dataset`` and the API)
and never change a file except through its plans (backed up, undoable).
"""
