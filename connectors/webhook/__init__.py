"""The generic signed-webhook connector: any source that can POST JSON and receive replies at a callback URL."""
