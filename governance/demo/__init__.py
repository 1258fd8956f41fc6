"""The demo seed of the quick start: an organisation with every role and a few workflows.

It sits on the top floor because it builds records of every app through their services."""
