"""Routers, one module per resource; each route checks, calls a service and shapes the answer."""
