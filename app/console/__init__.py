"""The web console: server-rendered pages in French over the API's own services."""
