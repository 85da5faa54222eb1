"""The editors' workbench: a small web app over the catalogue and the store (README: the workbench)."""
