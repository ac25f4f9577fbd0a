"""Migration revisions: 0001_initial (API), then indexer and worker revisions on top."""
