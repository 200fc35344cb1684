"""A .py file inside a static directory: Apache must refuse it (FilesMatch), never serve it."""

SECRET_SOURCE = "def never_served(): pass"
