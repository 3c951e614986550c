"""``gitops-dora import``: each module here recognises one kind of file from its content.

A kind module exposes ``KIND: str``, ``detect(parsed: ParsedFile) -> bool`` and
``load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary``; see
``analytics.importers.base``. Modules are discovered by name, so adding a kind edits no shared file.
"""
