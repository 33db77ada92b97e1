"""The web console: server-rendered pages over the services' gRPC APIs, and its users."""
