"""Endpoint hosting: the router of an endpoint, the instances of its deployments, request capture.

Nothing here imports the store: the endpoint service writes each router a configuration file and
starts the processes; ``worker.py`` runs under a deployment's own interpreter, standard library only.
"""
