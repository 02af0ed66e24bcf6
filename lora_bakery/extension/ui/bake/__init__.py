"""The Bake sub-tab: form (``form``), button handlers (``handlers``) and layout (``panel``)."""
