"""Building pipelines in Python, as Azure ML's ``@dsl.pipeline`` does: calling a component inside a
pipeline function adds a step; ``step.outputs.x`` passed to another step is the data binding.

The steps are named after the variables that hold them (``train = train_component(...)`` is step
``train``), else after their component (``train_component``, ``train_component_1``, ...).
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from types import FrameType
from typing import Any

from smalt.entities.io import Input, Output

_BUILDING: ContextVar[Builder | None] = ContextVar("smalt_pipeline_builder", default=None)


class PipelineInputRef:
    """A pipeline input inside its function: ``${{parent.inputs.<name>}}``."""

    def __init__(self, name: str, declared: Input) -> None:
        self.name = name
        self.declared = declared

    def binding(self) -> str:
        return f"${{{{parent.inputs.{self.name}}}}}"


class StepOutput:
    """``step.outputs.<port>``: passed to another step it binds that step's input; its ``path``,
    ``mode``, ``name`` and ``version`` can be set as on Azure ML's node outputs."""

    def __init__(self, step: StepBuilder, port: str, declared: Output) -> None:
        self.step = step
        self.port = port
        self.type = declared.type
        self.is_control = declared.is_control
        self.settings: dict[str, Any] = {}

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("path", "mode", "name", "version", "description"):
            self.settings[key] = value
            return
        super().__setattr__(key, value)

    def binding(self) -> str:
        return f"${{{{parent.jobs.{self.step.name}.outputs.{self.port}}}}}"


class _Ports:
    def __init__(self, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_values", values)

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name not in values:
            raise AttributeError(f"no port '{name}'; ports: {', '.join(values) or 'none'}")
        return values[name]

    def __getitem__(self, name: str) -> Any:
        return self.__getattr__(name)

    def __iter__(self) -> Any:
        return iter(object.__getattribute__(self, "_values"))


class StepBuilder:
    """A step being added to the pipeline whose function runs: a component and its input values."""

    def __init__(self, component: Any, inputs: dict[str, Any]) -> None:
        self.component = component
        self.name: str = ""
        self.display_name: str | None = None
        self.compute: str | None = None
        self.environment_variables: dict[str, str] = {}
        self.resources: dict[str, Any] | None = None
        self.distribution: dict[str, Any] | None = None
        self.limits: dict[str, Any] | None = None
        self.retry_settings: dict[str, Any] | None = None
        self.is_deterministic: bool | None = None
        self.inputs = _Ports(dict(inputs))
        self.outputs = _Ports({port: StepOutput(self, port, o) for port, o in component.outputs.items()})
        self._after: list[StepBuilder] = []

    def run_after(self, *others: StepBuilder) -> StepBuilder:
        """Wait for ``others`` although this step reads none of their outputs."""
        self._after.extend(others)
        return self


class ConditionBuilder:
    """``dsl.condition(...)``: the steps of the branch not taken are skipped."""

    def __init__(self, condition: Any, true_block: Any, false_block: Any) -> None:
        self.name = ""
        self.condition = condition
        self.true_block = _as_list(true_block)
        self.false_block = _as_list(false_block)


def _as_list(value: Any) -> list[StepBuilder]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


class Builder:
    """Collects the steps a pipeline function adds, and names them once it returns."""

    def __init__(self) -> None:
        self.nodes: list[StepBuilder | ConditionBuilder] = []
        self.names: dict[int, str] = {}

    def run(self, func: Any, kwargs: dict[str, Any]) -> Any:
        """Call ``func`` with this builder active; the names of its local variables name the steps."""
        captured: dict[str, Any] = {}
        code = func.__code__

        def profile(frame: FrameType, event: str, _arg: Any) -> None:
            if event == "return" and frame.f_code is code:
                captured.update(frame.f_locals)

        token = _BUILDING.set(self)
        previous = sys.getprofile()
        sys.setprofile(profile)
        try:
            result = func(**kwargs)
        finally:
            sys.setprofile(previous)
            _BUILDING.reset(token)
        for variable, value in captured.items():
            if isinstance(value, StepBuilder | ConditionBuilder) and id(value) not in self.names:
                self.names[id(value)] = variable
        return result

    def add(self, node: StepBuilder | ConditionBuilder) -> None:
        self.nodes.append(node)

    def assign_names(self) -> None:
        taken: set[str] = set()
        for node in self.nodes:
            explicit = node.name
            if explicit:
                taken.add(explicit)
        for node in self.nodes:
            if node.name:
                continue
            fallback = getattr(node.component, "name", None) if isinstance(node, StepBuilder) else None
            base: str = self.names.get(id(node)) or fallback or "condition"
            name, n = base, 0
            while name in taken:
                n += 1
                name = f"{base}_{n}"
            node.name = name
            taken.add(name)


def building() -> Builder | None:
    """The builder of the pipeline function that runs now, if any."""
    return _BUILDING.get()


def call_component(component: Any, inputs: dict[str, Any]) -> StepBuilder:
    """What calling a component does inside a pipeline function: add a step."""
    builder = building()
    if builder is None:
        raise TypeError(
            f"component '{component.name}' was called outside a pipeline; call it inside a function "
            "decorated with @dsl.pipeline"
        )
    unknown = [k for k in inputs if k not in component.inputs]
    if unknown:
        raise TypeError(
            f"component '{component.name}' has no input {', '.join(map(repr, unknown))}; "
            f"its inputs: {', '.join(component.inputs) or 'none'}"
        )
    step = StepBuilder(component, inputs)
    builder.add(step)
    return step


def call_command(job: Any, inputs: dict[str, Any]) -> StepBuilder:
    """What calling a ``command(...)`` job does inside a pipeline function, as in azure-ai-ml: add a
    step running it as a component, its own input values overridden by ``inputs``, and its compute,
    variables, resources, distribution and limits kept on the step."""
    component, values = job.as_component()
    step = call_component(component, {**values, **inputs})
    step.display_name = job.display_name
    step.compute = job.compute
    step.environment_variables = dict(job.environment_variables)
    step.resources = job.resources
    step.distribution = job.distribution
    step.limits = job.limits.to_dict() if job.limits else None
    for port, output in job.outputs.items():
        for key in ("path", "mode", "name", "version", "description"):
            if getattr(output, key) is not None:
                setattr(step.outputs[port], key, getattr(output, key))
    return step


def binding_of(value: Any) -> Any:
    """A step input's value as pipeline YAML writes it."""
    if isinstance(value, StepOutput | PipelineInputRef):
        return value.binding()
    if isinstance(value, StepBuilder):
        outputs = list(value.outputs)
        if len(outputs) != 1:
            raise TypeError(f"step '{value.name}' has {len(outputs)} outputs; pass one: step.outputs.<port>")
        return value.outputs[outputs[0]].binding()
    return value
