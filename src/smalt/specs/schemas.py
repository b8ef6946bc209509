"""What a file says it is: Azure ML's ``$schema`` names the kind of entity a YAML file holds.

A file given to a command that takes another kind is refused with the command that takes it
(``this is a commandJob file; smalt job create takes it``), and a kind smalt does not have yet is
refused as such: nothing is ever created as a different kind than its file says. A schema name
smalt does not know is left to the command (Azure adds kinds; the fields decide then).
"""

from __future__ import annotations

import re

from smalt.errors import InvalidSpecError
from smalt.specs.yaml_source import Source

#: Azure ML's schema names (``<name>.schema.json``, lowercased) -> (the ``az ml`` noun that takes
#: such a file, whether smalt has that kind yet).
SCHEMAS: dict[str, tuple[str, bool]] = {
    "commandjob": ("job", True),
    "pipelinejob": ("job", True),
    "sweepjob": ("job", False),
    "sparkjob": ("job", False),
    "automljob": ("job", False),
    "commandcomponent": ("component", True),
    "pipelinecomponent": ("component", True),
    "parallelcomponent": ("component", False),
    "sparkcomponent": ("component", False),
    "data": ("data", True),
    "environment": ("environment", True),
    "model": ("model", True),
    "amlcompute": ("compute", True),
    "computeinstance": ("compute", True),
    "kubernetescompute": ("compute", False),
    "vmcompute": ("compute", False),
    "azureblob": ("datastore", True),
    "azuredatalakegen2": ("datastore", True),
    "azurefile": ("datastore", True),
    "azuredatalakegen1": ("datastore", False),
    "managedonlineendpoint": ("online-endpoint", True),
    "kubernetesonlineendpoint": ("online-endpoint", False),
    "managedonlinedeployment": ("online-deployment", True),
    "kubernetesonlinedeployment": ("online-deployment", False),
    "batchendpoint": ("batch-endpoint", False),
    "batchdeployment": ("batch-deployment", False),
    "modelbatchdeployment": ("batch-deployment", False),
    "pipelinecomponentbatchdeployment": ("batch-deployment", False),
    "schedule": ("schedule", False),
    "workspace": ("workspace", False),
    "workspaceconnection": ("connection", True),
    "connection": ("connection", True),
    "registry": ("registry", False),
    "featurestore": ("feature-store", False),
}
#: How every refusal of a feature smalt lacks ends, so that a person (and a test) can tell it.
NOT_SUPPORTED = "not supported yet"
_NAME = re.compile(r"(?:^|/)(?P<name>[A-Za-z][A-Za-z0-9]*)\.schema\.json$")


#: The types of each noun that Azure ML has and smalt does not yet: refused as such, in one line,
#: never as a list of keys smalt does not know.
NOT_YET: dict[str, tuple[str, ...]] = {
    "job": ("sweep", "parallel", "spark", "automl", "import", "data_transfer", "finetuning", "distillation"),
    "component": ("parallel", "spark", "import", "data_transfer", "flow"),
    "compute": ("kubernetes", "virtualmachine", "synapsespark", "datafactory", "managed"),
    "datastore": ("azure_data_lake_gen1", "one_lake"),
    "online-deployment": ("kubernetes",),
    # Connections to a store or a service smalt reaches by other means (datastores), or not yet.
    "connection": ("azure_blob", "azure_data_lake_gen2", "adls_gen2", "azure_one_lake", "git", "python_feed",
                   "container_registry", "s3", "snowflake", "azure_sql_db", "azure_synapse_analytics",
                   "azure_my_sql_db", "azure_postgres_db", "azure_key_vault", "cognitive_search",
                   "cognitive_service"),
}

#: For a file with no ``$schema``: a key that only another kind has, and that kind's schema name (a
#: batch endpoint's ``defaults``, a schedule's ``trigger``), for each noun such a file is given to.
TELLTALES: dict[str, dict[str, str]] = {
    "online-endpoint": {"defaults": "batchEndpoint"},
    "online-deployment": {"mini_batch_size": "batchDeployment", "output_action": "batchDeployment",
                          "job_definition": "pipelineComponentBatchDeployment"},
    "job": {"trigger": "schedule", "create_job": "schedule", "trial": "sweepJob", "search_space": "sweepJob",
            "entry": "sparkJob"},
    "datastore": {"target": "connection"},
}  # fmt: skip


def check_kind(kind: str, source: Source) -> None:
    """Refuse ``source`` unless its ``$schema`` names ``kind`` (the command's noun) or nothing
    smalt knows; without ``$schema``, unless it holds a key only another kind has."""
    schema = source.data.get("$schema")
    match = _NAME.search(schema.strip()) if isinstance(schema, str) else None
    if match is None:
        if schema is None:
            _check_telltales(kind, source)
        return
    written = match["name"]
    noun, supported = SCHEMAS.get(written.lower(), (kind, True))
    if noun == kind and supported:
        return
    if not supported:
        message = f"this is {_a(written)} file, not supported yet"
        hint = None if noun == kind else f"`az ml {noun}` takes it on Azure ML"
    else:
        message = f"this is {_a(written)} file; `smalt {noun} create -f` takes it, not `smalt {kind}`"
        hint = f"smalt {noun} create -f {source.file}" if source.file else None
    raise InvalidSpecError.refusal(source.problem(message, ("$schema",)), hint=hint)


def _check_telltales(kind: str, source: Source) -> None:
    type_ = source.data.get("type")
    if isinstance(type_, str) and type_.lower() in NOT_YET.get(kind, ()):
        return  # the type says it, and the command refuses it by its type
    for key, written in TELLTALES.get(kind, {}).items():
        if key in source.data:
            noun = SCHEMAS[written.lower()][0]
            message = f"this is {_a(written)} file (it has '{key}'), not supported yet"
            raise InvalidSpecError.refusal(source.problem(message, (key,)), hint=f"`az ml {noun}` takes it on Azure ML")


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"
