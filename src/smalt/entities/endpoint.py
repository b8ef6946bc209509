"""Online endpoints and their deployments (Azure ML's ``managedOnlineEndpoint`` and
``managedOnlineDeployment`` schemas).

An endpoint is a stable, authenticated address; each deployment behind it holds a model, scoring
code (or an MLflow model and no code), an environment and a number of instances. ``traffic``
splits live requests between deployments by weight and ``mirror_traffic`` copies a share of them
to another deployment, whose answers are discarded.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from smalt.entities.base import (
    CreationContext,
    Description,
    Entity,
    EnvironmentRef,
    Located,
    ModelRef,
    Name,
    StrDict,
    Version,
)
from smalt.entities.environment import InlineEnvironment
from smalt.entities.model import ModelType

_AUTH_MODES = {"key": "key", "aml_token": "aml_token", "amltoken": "aml_token", "aad_token": "aad_token"}
ProvisioningState = Literal["Creating", "Updating", "Succeeded", "Failed", "Deleting", "Canceled"]


def _auth_mode(value: Any) -> Any:
    # Azure ML's YAML writes `aml_token`, its REST API `AMLToken`; both mean the same.
    return _AUTH_MODES.get(str(value).lower(), value) if isinstance(value, str) else value


def parse_weights(value: Any) -> Any:
    """``"blue=90 green=10"`` (as ``--traffic`` gives it) as a mapping; anything else as it is."""
    if isinstance(value, str):
        pairs = [item.split("=", 1) for item in value.replace(",", " ").split() if item]
        if any(len(pair) != 2 for pair in pairs):
            raise ValueError(f"traffic {value!r} must be written as 'blue=90 green=10'")
        return {name.strip(): weight.strip() for name, weight in pairs}
    return value


Weights = Annotated[dict[str, int], BeforeValidator(parse_weights)]


def _check_weights(field: str, weights: dict[str, int], *, total: int | None) -> None:
    for name, weight in weights.items():
        if not 0 <= weight <= 100:
            raise ValueError(f"{field}: the weight of '{name}' is {weight}; weights are percentages from 0 to 100")
    if total is not None and weights and sum(weights.values()) not in (0, total):
        raise ValueError(f"{field}: the weights add up to {sum(weights.values())}; they must add up to 0 or {total}")


#: The endpoint name given to a deployment that has none when it is packaged (``smalt model
#: package``): a package belongs to no endpoint, and a deployment entity names one.
PACKAGE_ENDPOINT = "package"
#: Azure ML's rule for endpoint names (they become part of a host name).
EndpointName = Annotated[str, Field(pattern=r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$", max_length=32)]


class OnlineEndpoint(Entity):
    """An online endpoint.

    Example::

        endpoint = ManagedOnlineEndpoint(name="credit", auth_mode="key")
        ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    """

    name: EndpointName
    auth_mode: Annotated[Literal["key", "aml_token", "aad_token"], BeforeValidator(_auth_mode)] = "key"
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    properties: StrDict = Field(default_factory=dict)
    traffic: Weights = Field(default_factory=dict)
    mirror_traffic: Weights = Field(default_factory=dict)
    # Accepted so that Azure ML files load unchanged; they have no effect locally.
    identity: dict[str, Any] | None = None
    public_network_access: NetworkAccess | None = None
    kind: str | None = None
    location: str | None = None
    # Set by smalt.
    scoring_uri: str | None = None
    openapi_uri: str | None = None
    provisioning_state: ProvisioningState | None = None
    #: ``Running`` while its router answers and every instance lives, ``Degraded`` while an instance
    #: is dead or being restarted, ``Stopped`` after ``online-endpoint stop`` or a restart.
    state: str | None = None
    creation_context: CreationContext | None = None

    @field_validator("auth_mode")
    @classmethod
    def _supported_auth(cls, value: str) -> str:
        if value == "aad_token":
            raise ValueError("auth_mode 'aad_token' (Microsoft Entra ID) is not supported yet; use key or aml_token")
        return value

    @model_validator(mode="after")
    def _weights_are_percentages(self) -> OnlineEndpoint:
        _check_weights("traffic", self.traffic, total=100)
        _check_weights("mirror_traffic", self.mirror_traffic, total=None)
        for name, weight in self.mirror_traffic.items():
            if weight > 50:
                raise ValueError(f"mirror_traffic: '{name}' is {weight}; a deployment may mirror at most 50 percent")
        return self


#: ``enabled`` or ``disabled``, as Azure writes them in any case.
NetworkAccess = Annotated[
    Literal["enabled", "disabled"], BeforeValidator(lambda v: v.lower() if isinstance(v, str) else v)
]


def _default_scale_only(value: dict[str, Any]) -> dict[str, Any]:
    type_ = str(value.get("type", "default")).lower()
    if type_ != "default":
        raise ValueError(f"scale_settings type {type_!r} is for Kubernetes deployments; a managed deployment "
                         "takes type default")  # fmt: skip
    return value


class CodeConfiguration(Entity):
    """Where the scoring script is: ``code`` (a folder) and ``scoring_script`` (a file in it)."""

    code: str
    scoring_script: str


class InlineModel(Entity):
    """A model written inside a deployment (``model: {path: ./model}``); registered on create."""

    name: Name | None = None
    version: Version | None = None
    path: str
    type: ModelType = "custom_model"
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    properties: StrDict = Field(default_factory=dict)
    flavors: dict[str, Any] | None = None
    stage: str | None = None


class RequestSettings(Entity):
    #: How long the router waits for ``run()`` before answering 408 (Azure ML's default).
    request_timeout_ms: int = Field(default=5000, ge=1, le=180_000)
    #: Requests one instance handles at once; more wait up to ``max_queue_wait_ms``, then get 429.
    max_concurrent_requests_per_instance: int = Field(default=1, ge=1, le=1000)
    max_queue_wait_ms: int = Field(default=500, ge=0)


class ProbeSettings(Entity):
    initial_delay: int = Field(default=10, ge=0)
    period: int = Field(default=10, ge=1)
    timeout: int = Field(default=2, ge=1)
    failure_threshold: int = Field(default=30, ge=1)
    success_threshold: int = Field(default=1, ge=1)


class DataAssetRef(Entity):
    name: str | None = None
    path: str | None = None
    version: Version | None = None


class DeploymentCollection(Entity):
    enabled: Annotated[bool, BeforeValidator(lambda v: str(v).lower() == "true" if isinstance(v, str) else v)] = False
    data: DataAssetRef | None = None
    client_id: str | None = None
    sampling_rate: float | None = Field(default=None, ge=0.0, le=1.0)


class DataCollector(Entity):
    """Request capture: ``collections.model_inputs`` / ``model_outputs``, ``sampling_rate``."""

    collections: dict[str, DeploymentCollection] = Field(default_factory=dict)
    sampling_rate: float = Field(default=1.0, ge=0.0, le=1.0)
    # Azure's docs write `hour`, its REST API `Hour`: both mean the same.
    rolling_rate: Annotated[
        Literal["Hour", "Day", "Minute", "Year", "Month"],
        BeforeValidator(lambda v: v.capitalize() if isinstance(v, str) else v),
    ] = "Hour"
    request_logging: dict[str, Any] | None = None

    def enabled(self) -> list[str]:
        return [name for name, collection in self.collections.items() if collection.enabled]


class OnlineDeployment(Located):
    """A deployment behind an online endpoint.

    Example::

        ManagedOnlineDeployment(
            name="blue", endpoint_name="credit", model="azureml:credit:1",
            code_configuration=CodeConfiguration(code="./score", scoring_script="score.py"),
            environment="azureml:sklearn-env:1", instance_count=1,
        )
    """

    name: Name
    endpoint_name: Name
    description: Description | None = None
    tags: StrDict = Field(default_factory=dict)
    properties: StrDict = Field(default_factory=dict)
    model: ModelRef | InlineModel | None = None
    code_configuration: CodeConfiguration | None = None
    environment: EnvironmentRef | InlineEnvironment | None = None
    environment_variables: StrDict = Field(default_factory=dict)
    instance_type: str | None = None
    instance_count: int = Field(default=1, ge=1, le=64)
    request_settings: RequestSettings = Field(default_factory=RequestSettings)
    liveness_probe: ProbeSettings | None = None
    readiness_probe: ProbeSettings | None = None
    data_collector: DataCollector | None = None
    # Accepted so that Azure ML files load unchanged; they have no effect locally.
    type: Literal["managed"] | None = None
    app_insights_enabled: bool | None = None
    egress_public_network_access: NetworkAccess | None = None
    scale_settings: Annotated[dict[str, Any], AfterValidator(_default_scale_only)] | None = None
    #: Where a container would mount the model; instances here read it from AZUREML_MODEL_DIR.
    model_mount_path: str | None = None
    # Set by smalt.
    provisioning_state: ProvisioningState | None = None
    #: The model version the deployment serves, ``azureml:<name>:<version>``, once resolved.
    model_ref: str | None = None
    creation_context: CreationContext | None = None

    @model_validator(mode="after")
    def _something_to_serve(self) -> OnlineDeployment:
        if self.model is None and self.code_configuration is None:
            raise ValueError("a deployment needs a model, a code_configuration, or both")
        return self


class EndpointAuthKeys(Entity):
    """``get-credentials`` of a key endpoint (Azure ML's ``EndpointAuthKeys``)."""

    primary_key: str
    secondary_key: str

    def to_dict(self) -> dict[str, Any]:
        return {"primaryKey": self.primary_key, "secondaryKey": self.secondary_key}


class EndpointAuthToken(Entity):
    """``get-credentials`` of an ``aml_token`` endpoint (Azure ML's ``EndpointAuthToken``)."""

    access_token: str
    expiry_time_utc: float
    refresh_after_time_utc: float
    token_type: str = "Bearer"

    def to_dict(self) -> dict[str, Any]:
        return {
            "accessToken": self.access_token, "expiryTimeUtc": self.expiry_time_utc,
            "refreshAfterTimeUtc": self.refresh_after_time_utc, "tokenType": self.token_type,
        }  # fmt: skip


#: Azure ML's SDK names, so that its code runs unchanged.
ManagedOnlineEndpoint = OnlineEndpoint
ManagedOnlineDeployment = OnlineDeployment
