"""The Reg images tab's parts: :mod:`.handlers` (what the buttons do) and :mod:`.panel` (the components)."""
