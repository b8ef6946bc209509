"""smalt's domain: pydantic models named and shaped as Azure ML's, with no I/O."""

from smalt.entities.base import Asset, CreationContext, Entity
from smalt.entities.component import CommandComponent
from smalt.entities.compute import Compute
from smalt.entities.data import AssetTypes, Data
from smalt.entities.datastore import (
    AzureBlobDatastore,
    AzureDataLakeGen2Datastore,
    AzureFileDatastore,
    Datastore,
    DatastoreCredentials,
    GcsDatastore,
    LocalDatastore,
    S3Datastore,
)
from smalt.entities.endpoint import (
    CodeConfiguration,
    DataCollector,
    EndpointAuthKeys,
    EndpointAuthToken,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    OnlineDeployment,
    OnlineEndpoint,
)
from smalt.entities.environment import BuildContext, Environment, InlineEnvironment
from smalt.entities.io import Input, Output
from smalt.entities.job import JOB_STATUS, RUN_STATUS, CommandJob, JobStatus, command
from smalt.entities.lineage import LineageEdge, LineageGraph, LineageNode, ModelComparison
from smalt.entities.model import Model
from smalt.entities.pipeline import PipelineComponent, PipelineJob, PipelineSettings, RetrySettings
from smalt.entities.workspace import Workspace

#: Azure ML's SDK names for compute and datastore kinds, so that its code runs unchanged.
AmlCompute = Compute
AccountKeyConfiguration = DatastoreCredentials
SasTokenConfiguration = DatastoreCredentials
ServicePrincipalConfiguration = DatastoreCredentials

__all__ = [
    "OnlineEndpoint",
    "OnlineDeployment",
    "ManagedOnlineEndpoint",
    "ManagedOnlineDeployment",
    "EndpointAuthToken",
    "EndpointAuthKeys",
    "DataCollector",
    "CodeConfiguration",
    "AccountKeyConfiguration",
    "AmlCompute",
    "Asset",
    "AssetTypes",
    "AzureBlobDatastore",
    "AzureDataLakeGen2Datastore",
    "AzureFileDatastore",
    "BuildContext",
    "CommandComponent",
    "CommandJob",
    "Compute",
    "CreationContext",
    "Data",
    "Datastore",
    "DatastoreCredentials",
    "Entity",
    "Environment",
    "GcsDatastore",
    "InlineEnvironment",
    "Input",
    "JOB_STATUS",
    "JobStatus",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "LocalDatastore",
    "Model",
    "ModelComparison",
    "Output",
    "PipelineComponent",
    "PipelineJob",
    "PipelineSettings",
    "RUN_STATUS",
    "RetrySettings",
    "S3Datastore",
    "SasTokenConfiguration",
    "ServicePrincipalConfiguration",
    "Workspace",
    "command",
]
