"""`releasekit promote` and `sync`: GitOps moves of tested releases between environments."""
