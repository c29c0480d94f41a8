"""A real Triton Inference Server for tests, serving a model repository written by ``emoscribe export --triton``.

Runs under the interpreter of ``.venv-triton`` (``nvidia-pytriton``, which needs numpy < 2); ``triton_launch``
starts it:

    .venv-triton/bin/python tests/triton_server.py REPOSITORY GRPC_PORT HTTP_PORT METRICS_PORT WORKSPACE

pytriton's server runs Python models only, so each ONNX Runtime model of the repository is served as a Python
model that runs the same ``model.onnx`` in ONNX Runtime, bound from the model's own ``config.pbtxt``: the same
name, inputs, outputs, reshapes, batch limit, dynamic batching and parameters (the bundle's checksums). Anything
in a config this stand-in cannot honour stops it. Prints ``ready`` once every model is loaded, then serves until
its standard input closes.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

# Triton's Python backend stub loads libpython of this interpreter.
os.environ["LD_LIBRARY_PATH"] = f"{sysconfig.get_config_var('LIBDIR')}:{os.environ.get('LD_LIBRARY_PATH', '')}"

import numpy as np
import onnxruntime as ort
from google.protobuf import text_format
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig
from tritonclient.grpc import model_config_pb2

DTYPES = {
    model_config_pb2.TYPE_FP32: np.float32,
    model_config_pb2.TYPE_FP16: np.float16,
    model_config_pb2.TYPE_INT32: np.int32,
    model_config_pb2.TYPE_INT64: np.int64,
}
HONOURED = {"name", "backend", "max_batch_size", "input", "output", "dynamic_batching", "parameters"}


def read_config(folder: Path) -> model_config_pb2.ModelConfig:
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    used = {field.name for field, _ in config.ListFields()}
    if config.backend != "onnxruntime" or used - HONOURED or config.name != folder.name:
        raise SystemExit(f"{folder}: this stand-in serves ONNX Runtime models with {sorted(HONOURED)} only")
    return config


def inference(config: model_config_pb2.ModelConfig, model: Path):
    """The ONNX model behind Triton's batcher, inputs reshaped as the config says, as Triton's ONNX Runtime
    backend does."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    reshapes = {i.name: tuple(i.reshape.shape) for i in config.input if i.HasField("reshape")}
    outputs = [o.name for o in config.output]

    @batch
    def run(**inputs: np.ndarray) -> dict[str, np.ndarray]:
        feed = {
            name: value.reshape(value.shape[0], *reshapes.get(name, value.shape[1:]))
            for name, value in inputs.items()
        }
        return dict(zip(outputs, session.run(outputs, feed), strict=True))

    return run


def tensors(specs) -> list[Tensor]:
    return [Tensor(name=s.name, dtype=DTYPES[s.data_type], shape=tuple(s.dims)) for s in specs]


def main(repository: Path, grpc_port: int, http_port: int, metrics_port: int, workspace: Path) -> None:
    triton = Triton(
        config=TritonConfig(
            grpc_address="127.0.0.1",
            grpc_port=grpc_port,
            http_address="127.0.0.1",
            http_port=http_port,
            metrics_port=metrics_port,
        ),
        workspace=workspace,
    )
    identities = {}
    for folder in sorted(p for p in repository.iterdir() if (p / "config.pbtxt").is_file()):
        config = read_config(folder)
        queue_delay = config.dynamic_batching.max_queue_delay_microseconds
        triton.bind(
            model_name=config.name,
            infer_func=inference(config, folder / "1" / "model.onnx"),
            inputs=tensors(config.input),
            outputs=tensors(config.output),
            config=ModelConfig(
                max_batch_size=config.max_batch_size,
                batcher=DynamicBatcher(max_queue_delay_microseconds=queue_delay),
            ),
        )
        identities[config.name] = {key: value.string_value for key, value in config.parameters.items()}
    # pytriton has no public way to add parameters to a model's config; they are set before the models load.
    for model in triton._model_manager.models:
        model._get_triton_model_config().backend_parameters.update(identities[model.model_name])
    triton.run()
    print("ready", flush=True)
    sys.stdin.read()
    triton.stop()


if __name__ == "__main__":
    repository, grpc_port, http_port, metrics_port, workspace = sys.argv[1:]
    main(Path(repository), int(grpc_port), int(http_port), int(metrics_port), Path(workspace))
