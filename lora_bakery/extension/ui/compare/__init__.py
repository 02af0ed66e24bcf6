"""The Compare tab's panel (components and wiring) and handlers (what the buttons do)."""
