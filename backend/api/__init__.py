"""The HTTP layer's shared plumbing: the app's services and the request's transaction."""
